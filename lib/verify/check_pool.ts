/**
 * Verify's bounded parallelism: batches of files read and checked by a few Deno Workers
 * (check_worker.ts), each a thread of its own, so that hashing and parsing many small files
 * uses the machine's cores as `sha256sum` would use one. Without workers (none asked for, or
 * a build that does not carry their module) the same checks run inline.
 */
import { fileURLToPath } from "node:url";
import { DataDir } from "../store/data_dir.ts";
import { StorageError } from "../util/errors.ts";
import { checkFiles, type CheckOptions, type Outcomes } from "./check_file.ts";

export type PoolRequest =
  | { kind: "start"; root: string; withTime: boolean }
  | {
    kind: "check";
    id: number;
    /** The batch's paths, joined by NUL (which no name holds): one string, not one a file. */
    paths: string;
    folders: Array<[string, string[]]>;
  };

export type PoolReply = { id: number; outcomes: Outcomes } | { id: number; error: string };

/** At most this many workers: beyond it the main thread (the walk, the manifest) sets the pace. */
const MAX_WORKERS = 4;

/** The default: one worker a CPU, capped. */
export function defaultWorkers(): number {
  return Math.max(1, Math.min(navigator.hardwareConcurrency || 1, MAX_WORKERS));
}

const WORKER_MODULE = new URL("./check_worker.ts", import.meta.url);

/**
 * The worker module, if this build carries it: `deno compile` embeds it (scripts/compile.ts
 * includes it), `deno bundle` makes one file without it.
 */
function workerModuleAvailable(): boolean {
  try {
    return WORKER_MODULE.protocol !== "file:" || Deno.statSync(fileURLToPath(WORKER_MODULE)).isFile;
  } catch {
    return false;
  }
}

interface Pending {
  resolve: (outcomes: Outcomes) => void;
  reject: (error: unknown) => void;
  worker: number;
}

export class CheckPool {
  readonly #workers: Worker[] = [];
  /** Batches sent and not answered, by id; and how many each worker holds. */
  readonly #pending = new Map<number, Pending>();
  readonly #load: number[] = [];
  #nextId = 0;
  #failure: unknown;

  /** `workers` 0 checks inline. */
  constructor(
    readonly dataDir: DataDir,
    workers: number,
    readonly options: CheckOptions,
  ) {
    if (workers < 1 || !workerModuleAvailable()) return;
    for (let i = 0; i < workers; i++) {
      const worker = new Worker(WORKER_MODULE, { type: "module" });
      worker.onmessage = (event: MessageEvent<PoolReply>) => this.#answer(event.data);
      worker.onerror = (event) => {
        event.preventDefault();
        this.#fail(new StorageError(`A worker of verify failed: ${event.message}`));
      };
      worker.postMessage(
        { kind: "start", root: dataDir.root, withTime: options.withTime } satisfies PoolRequest,
      );
      this.#workers.push(worker);
      this.#load.push(0);
    }
    options.signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** Workers in use (0: inline). */
  get size(): number {
    return this.#workers.length;
  }

  /**
   * The outcomes of `paths`, in their order; sent to the least busy worker. Their folders
   * must be prepared (DataDir.prepareReads) in this pool's DataDir, which tells the workers
   * what it found.
   */
  check(paths: string[]): Promise<Outcomes> {
    if (this.#workers.length === 0) return checkFiles(this.dataDir, paths, this.options);
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const worker = this.#load.indexOf(Math.min(...this.#load));
    const id = this.#nextId++;
    this.#load[worker]!++;
    const { promise, resolve, reject } = Promise.withResolvers<Outcomes>();
    this.#pending.set(id, { resolve, reject, worker });
    const folders = new Map<string, string[]>();
    for (const path of paths) {
      const folder = path.slice(0, Math.max(0, path.lastIndexOf("/")));
      if (folders.has(folder)) continue;
      const irregular = this.dataDir.preparedIrregular(folder);
      // One that could not be prepared is left to the worker, whose reads then say why.
      if (irregular) folders.set(folder, irregular);
    }
    this.#workers[worker]!.postMessage(
      { kind: "check", id, paths: paths.join("\0"), folders: [...folders] } satisfies PoolRequest,
    );
    // Rejected (Ctrl+C) before its caller awaits it: that is no unhandled rejection.
    promise.catch(() => {});
    return promise;
  }

  /** Ends the workers (also after an error or Ctrl+C); batches not answered fail. */
  close(): void {
    this.options.signal?.removeEventListener("abort", this.#onAbort);
    for (const worker of this.#workers) worker.terminate();
    this.#fail(new StorageError("verify's workers were stopped"));
  }

  #answer(reply: PoolReply): void {
    const pending = this.#pending.get(reply.id);
    if (!pending) return;
    this.#pending.delete(reply.id);
    this.#load[pending.worker]!--;
    if ("error" in reply) pending.reject(new StorageError(`Verify cannot read: ${reply.error}`));
    else pending.resolve(reply.outcomes);
  }

  #fail(error: unknown): void {
    this.#failure ??= error;
    for (const pending of this.#pending.values()) pending.reject(this.#failure);
    this.#pending.clear();
  }

  /** Ctrl+C: the batches in flight fail with the signal's reason, as an inline read would. */
  readonly #onAbort = () => this.#fail(this.options.signal?.reason);
}
