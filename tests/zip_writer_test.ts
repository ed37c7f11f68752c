/** Archives from our writer are read back by zip.js (CRC checked) and by `unzip -t`. */
import assert from "node:assert/strict";
import { configure, Uint8ArrayWriter, ZipReader } from "@zip.js/zip.js";
import { ZipWriter } from "../lib/zip/writer.ts";

configure({ useWebWorkers: false });

async function readZip(path: string): Promise<Map<string, Uint8Array | "dir">> {
  const reader = new ZipReader((await Deno.open(path)).readable);
  const out = new Map<string, Uint8Array | "dir">();
  for (const entry of await reader.getEntries()) {
    out.set(
      entry.filename,
      entry.directory
        ? "dir"
        : await entry.getData(new Uint8ArrayWriter(), { checkSignature: true }),
    );
  }
  await reader.close();
  return out;
}

async function unzipTest(path: string): Promise<string> {
  const { code, stdout, stderr } = await new Deno.Command("unzip", { args: ["-t", path] }).output();
  const text = new TextDecoder().decode(stdout) + new TextDecoder().decode(stderr);
  assert.equal(code, 0, text);
  return text;
}

/** Names in a folder, sorted: the writer's scratch file must never be left there. */
async function folderNames(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir), (entry) => entry.name)).sort();
}

function randomBytes(size: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) {
    crypto.getRandomValues(out.subarray(i, Math.min(size, i + 65536)));
  }
  return out;
}

for (const forceZip64 of [false, true]) {
  Deno.test(`entries round-trip byte for byte${forceZip64 ? " with zip64 records" : ""}`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const path = `${dir}/a.zip`;
      const json = new TextEncoder().encode(JSON.stringify({ message: "hello ".repeat(200) }));
      const media = randomBytes(300_000);
      const big = new TextEncoder().encode("line of a large text file\n".repeat(100_000));
      await Deno.writeFile(`${dir}/big.txt`, big);
      const writer = await ZipWriter.create(path, { forceZip64 });
      await writer.addDirectory("teams/");
      await writer.addBytes("teams/post.json", json);
      await writer.addBytes("teams/empty.json", new Uint8Array());
      await writer.addBytes("teams/photo.png", media, { level: 0 });
      await writer.addBytes("users/café ☕ 😀.json", json);
      const source = await Deno.open(`${dir}/big.txt`);
      await writer.addStream("files/big.txt", source.readable, { size: big.length });
      await writer.addStream("files/stored.bin", new Blob([media]).stream(), { level: 0 });
      await writer.close();
      const entries = await readZip(path);
      assert.deepEqual([...entries.keys()], [
        "teams/",
        "teams/post.json",
        "teams/empty.json",
        "teams/photo.png",
        "users/café ☕ 😀.json",
        "files/big.txt",
        "files/stored.bin",
      ]);
      assert.equal(entries.get("teams/"), "dir");
      assert.deepEqual(entries.get("teams/post.json"), json);
      assert.deepEqual(entries.get("teams/empty.json"), new Uint8Array());
      assert.deepEqual(entries.get("teams/photo.png"), media);
      assert.deepEqual(entries.get("files/big.txt"), big);
      assert.deepEqual(entries.get("files/stored.bin"), media);
      assert.ok(
        (await Deno.stat(path)).size < 2 * media.length + big.length / 10,
        "text was deflated",
      );
      const report = await unzipTest(path);
      assert.match(report, /No errors detected/);
      // Before the end record: the zip64 end record and its locator, only when forced.
      const bytes = await Deno.readFile(path);
      const tail = new DataView(bytes.buffer, bytes.length - 22 - 20 - 56);
      assert.equal(tail.getUint32(0, true) === 0x06064b50, forceZip64, "zip64 end record");
      assert.equal(tail.getUint32(56, true) === 0x07064b50, forceZip64, "zip64 locator");
      if (forceZip64) assert.equal(tail.getBigUint64(32, true), 7n, "entries in the zip64 record");
      assert.deepEqual(await folderNames(dir), ["a.zip", "big.txt"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("65,536 entries switch the archive to zip64 by themselves", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/many.zip`;
    const writer = await ZipWriter.create(path);
    const data = new TextEncoder().encode("{}");
    for (let i = 0; i < 65_536; i++) await writer.addBytes(`p/${i}.json`, data, { level: 0 });
    await writer.close();
    const bytes = await Deno.readFile(path);
    const tail = new DataView(bytes.buffer, bytes.length - 22 - 20 - 56);
    assert.equal(tail.getUint32(0, true), 0x06064b50, "zip64 end of central directory present");
    assert.equal(tail.getBigUint64(32, true), 65_536n);
    const reader = new ZipReader((await Deno.open(path)).readable);
    const entries = await reader.getEntries();
    assert.equal(entries.length, 65_536);
    const last = entries.at(-1);
    assert.ok(last && !last.directory);
    assert.equal(last.filename, "p/65535.json");
    assert.deepEqual(await last.getData(new Uint8ArrayWriter(), { checkSignature: true }), data);
    await reader.close();
    await unzipTest(path);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a file that changes size while being zipped is an error, not a silent corruption", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const writer = await ZipWriter.create(`${dir}/x.zip`);
    await assert.rejects(
      writer.addStream("grown.bin", new Blob([new Uint8Array(10)]).stream(), { size: 5 }),
      /changed while being zipped: 10 bytes read, 5 expected/,
    );
    await writer.abort();
    assert.deepEqual(await folderNames(dir), ["x.zip"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
