/** Our reader against our writer (zip64 or not) and against zip.js's writer, and damaged files. */
import assert from "node:assert/strict";
import { BlobReader, configure, ZipWriter as ZipJsWriter } from "@zip.js/zip.js";
import { ZipWriter } from "../lib/zip/writer.ts";
import { type ZipEntry, ZipFormatError, ZipReader } from "../lib/zip/reader.ts";

configure({ useWebWorkers: false });

async function readAll(path: string): Promise<Map<string, Uint8Array | "dir">> {
  const zip = await ZipReader.open(path);
  try {
    const out = new Map<string, Uint8Array | "dir">();
    const entries: ZipEntry[] = await Array.fromAsync(zip.entries());
    assert.equal(entries.length, zip.count);
    for (const entry of entries) {
      out.set(
        entry.name,
        entry.directory ? "dir" : await new Response(await zip.readable(entry)).bytes(),
      );
    }
    return out;
  } finally {
    zip.close();
  }
}

const json = new TextEncoder().encode(JSON.stringify({ message: "hello ".repeat(500) }));
const media = crypto.getRandomValues(new Uint8Array(50_000));

for (const forceZip64 of [false, true]) {
  Deno.test(`archives of our writer read back byte for byte${forceZip64 ? " (zip64)" : ""}`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      const path = `${dir}/a.zip`;
      const writer = await ZipWriter.create(path, { forceZip64 });
      await writer.addDirectory("data/");
      await writer.addBytes("data/post.json", json);
      await writer.addBytes("data/empty.json", new Uint8Array());
      await writer.addStream("data/photo.png", new Blob([media]).stream(), { level: 0 });
      await writer.addStream("café ☕.jsonl", new Blob([json]).stream(), { size: json.length });
      await writer.close();
      assert.deepEqual(
        await readAll(path),
        new Map<string, Uint8Array | "dir">([
          ["data/", "dir"],
          ["data/post.json", json],
          ["data/empty.json", new Uint8Array()],
          ["data/photo.png", media],
          ["café ☕.jsonl", json],
        ]),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("archives of another writer (zip.js, with data descriptors) read back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = await Deno.open(`${dir}/b.zip`, { write: true, create: true });
    const writer = new ZipJsWriter(file.writable, { dataDescriptor: true });
    await writer.add("import.jsonl", new BlobReader(new Blob([json])));
    await writer.add("data/x.png", new BlobReader(new Blob([media])), { level: 0 });
    await writer.close();
    assert.deepEqual(
      await readAll(`${dir}/b.zip`),
      new Map([["import.jsonl", json], ["data/x.png", media]]),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a changed byte fails the entry's stream; a cut or foreign file fails to open", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/c.zip`;
    const writer = await ZipWriter.create(path);
    await writer.addBytes("data/photo.png", media, { level: 0 });
    await writer.close();
    const bytes = await Deno.readFile(path);
    const changed = bytes.slice();
    const at = 30 + "data/photo.png".length + 1000;
    changed[at] = (changed[at] as number) ^ 0xff;
    await Deno.writeFile(`${dir}/changed.zip`, changed);
    const zip = await ZipReader.open(`${dir}/changed.zip`);
    try {
      const [entry] = await Array.fromAsync(zip.entries());
      await assert.rejects(
        new Response(await zip.readable(entry as ZipEntry)).bytes(),
        (error: Error) => error instanceof ZipFormatError && /CRC wrong/.test(error.message),
      );
    } finally {
      zip.close();
    }
    await Deno.writeFile(`${dir}/cut.zip`, bytes.subarray(0, bytes.length - 30));
    await assert.rejects(ZipReader.open(`${dir}/cut.zip`), ZipFormatError);
    await Deno.writeFile(`${dir}/text.zip`, new TextEncoder().encode("not a zip at all"));
    await assert.rejects(ZipReader.open(`${dir}/text.zip`), /not a ZIP archive/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a central directory longer than one read chunk is read record by record", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/many.zip`;
    const writer = await ZipWriter.create(path);
    const names = Array.from(
      { length: 3000 },
      (_, i) => `data/attachments/${"x".repeat(i % 90)}/${i}.txt`,
    );
    for (const name of names) {
      await writer.addBytes(name, new TextEncoder().encode(name), { level: 0 });
    }
    await writer.close();
    const zip = await ZipReader.open(path);
    try {
      assert.ok(zip.directorySize > 3 * 65536, `${zip.directorySize} bytes of directory`);
      const entries = await Array.fromAsync(zip.entries());
      assert.deepEqual(entries.map((e) => e.name), names);
      const last = entries.at(-1) as ZipEntry;
      assert.equal(await new Response(await zip.readable(last)).text(), last.name);
    } finally {
      zip.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deflate data that cannot be inflated is a ZipFormatError naming the entry, not a bare TypeError", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/d.zip`;
    const writer = await ZipWriter.create(path);
    await writer.addBytes("post.json", json, { level: 6 });
    await writer.close();
    const bytes = await Deno.readFile(path);
    const view = new DataView(bytes.buffer);
    const data = 30 + view.getUint16(26, true) + view.getUint16(28, true);
    // 0xff starts a deflate block of the reserved type 3: invalid from the first byte.
    bytes.fill(0xff, data, data + 16);
    await Deno.writeFile(path, bytes);
    const zip = await ZipReader.open(path);
    try {
      const [entry] = await Array.fromAsync(zip.entries());
      assert.equal(entry?.method, 8);
      await assert.rejects(
        new Response(await zip.readable(entry as ZipEntry)).bytes(),
        (error: Error) =>
          error instanceof ZipFormatError && /^post\.json cannot be inflated/.test(error.message),
      );
    } finally {
      zip.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
