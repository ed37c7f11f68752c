/**
 * A worker of `matterbak verify` (see check_pool.ts): reads and checks the batches of files it
 * is sent, with the same permissions as the program (a worker inherits them) and the same reads
 * as everywhere else (DataDir: no symbolic link followed), and sends back their outcomes.
 */
/// <reference lib="deno.worker" />
import { DataDir } from "../store/data_dir.ts";
import { describeError } from "../util/errors.ts";
import { checkFiles } from "./check_file.ts";
import type { PoolReply, PoolRequest } from "./check_pool.ts";

let dataDir: DataDir | undefined;
let withTime = false;

self.onmessage = async (event: MessageEvent<PoolRequest>) => {
  const request = event.data;
  if (request.kind === "start") {
    dataDir = new DataDir(request.root);
    withTime = request.withTime;
    return;
  }
  let reply: PoolReply;
  try {
    if (!dataDir) throw new Error("verify's worker was sent files before its data dir");
    for (const [folder, names] of request.folders) dataDir.adoptPreparedReads(folder, names);
    const paths = request.paths.split("\0");
    reply = { id: request.id, outcomes: await checkFiles(dataDir, paths, { withTime }) };
  } catch (error) {
    // Every failure of a file is an outcome; this is a bug or a failing system, said plainly.
    reply = { id: request.id, error: describeError(error) };
  }
  self.postMessage(reply);
};
