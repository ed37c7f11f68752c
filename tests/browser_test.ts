/**
 * The website in a real browser (Debian's chromium, driven by puppeteer-core): opened from
 * file://, read with JavaScript off by following links from the index to every backed-up
 * message, searched with JavaScript on, and watched for requests leaving file://, scripts from
 * messages running, CSP violations and images that do not load. `.ci/run` installs chromium
 * and sets MATTERBAK_BROWSER_TEST=required (a missing browser then fails the test); elsewhere
 * the test is skipped without /usr/bin/chromium.
 *
 * With MATTERBAK_SCREENSHOTS=1 it also saves docs/view-light.png and docs/view-dark.png.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { DataDir } from "../lib/store/data_dir.ts";
import { BackupReader } from "../lib/store/reader.ts";
import { fullConfig } from "./expected_backup.ts";
import { startHarness } from "./harness.ts";
import { generateWorld } from "./simulator/generate.ts";
import { type Watch, watchPage } from "./browser_watch.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasBrowser = await Deno.stat(CHROMIUM).then(() => true, () => false);
const DOCS = fileURLToPath(new URL("../docs/", import.meta.url));

function watch(page: Page): Watch & { problems: string[] } {
  const w = { ...watchPage(page), problems: [] as string[] };
  page.on("pageerror", (error) => w.problems.push(`page error: ${String(error)}`));
  page.on("console", (message) => {
    if (message.type() === "error") w.problems.push(`console: ${message.text()}`);
  });
  page.on("requestfailed", (request) => {
    if (request.url().startsWith("file://")) {
      w.problems.push(`failed: ${request.url()} ${request.failure()?.errorText}`);
    }
  });
  return w;
}

/** Every image on the page was loaded (JavaScript off loads lazy images at once). */
async function brokenImages(page: Page): Promise<string[]> {
  return await page.$$eval(
    "img",
    (imgs) => imgs.filter((i) => !i.complete || i.naturalWidth === 0).map((i) => i.src),
  );
}

Deno.test({
  name: "the site opens from file://, every message is reached by links without JavaScript, " +
    "search finds and opens a post, and nothing leaves file:// or runs from a message",
  ignore: !hasBrowser && Deno.env.get("MATTERBAK_BROWSER_TEST") !== "required",
  // puppeteer keeps its connection's timers and sockets in the test's sanitizers' view.
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const { world, me, password } = generateWorld({
      hostileNames: true,
      showcase: true,
      postsPerChannel: 60,
      filesEvery: 4,
    });
    const h = await startHarness({
      world,
      credentials: { user: me.username, password },
      channels: fullConfig(world, me.id),
    });
    let browser: Browser | undefined;
    try {
      const siteDir = join(h.dir, "site");
      const run = await h.run(["--view", siteDir, "--quiet"]);
      assert.equal(run.status, 0, run.err.join("\n"));
      const reader = new BackupReader(new DataDir(h.dataDir));
      const expected = new Map<string, Set<string>>();
      const repliesTo = new Map<string, string[]>();
      let showcaseRoot = "";
      let showcaseEdited: { id: string; channel: string } | undefined;
      for (const channel of await reader.channels()) {
        const ids = new Set<string>();
        for await (const item of reader.posts(channel)) {
          if (item.kind !== "post") continue;
          ids.add(item.post.id);
          const root = item.post.root_id;
          if (root) repliesTo.set(root, [...repliesTo.get(root) ?? [], item.post.id]);
          if (String(item.post.message).startsWith("Whiteboard")) showcaseRoot = item.post.id;
          if (String(item.post.message).endsWith("(now with notes)")) {
            showcaseEdited = { id: item.post.id, channel: channel.id };
          }
        }
        expected.set(channel.id, ids);
      }
      assert.ok(showcaseRoot, "the showcase thread was backed up");

      browser = await puppeteer.launch({
        executablePath: CHROMIUM,
        args: ["--no-sandbox", "--disable-gpu"],
        headless: true,
      });
      const index = pathToFileURL(join(siteDir, "index.html")).href;

      // JavaScript off: the index leads to each channel's newest page, "older" to the rest.
      const page = await browser.newPage();
      await page.setRequestInterception(true);
      const w = watch(page);
      await page.setJavaScriptEnabled(false);
      await page.goto(index);
      const channelLinks = await page.$$eval(
        ".channel-row > a",
        (links) => links.map((a) => (a as unknown as { href: string }).href),
      );
      assert.equal(channelLinks.length, expected.size);
      assert.deepEqual(await brokenImages(page), []);
      let postsSeen = 0;
      let imagesSeen = 0;
      for (const link of channelLinks) {
        const seen = new Set<string>();
        let channelId = "";
        for (let url: string | undefined = link; url;) {
          await page.goto(url);
          channelId = await page.$eval("main", (m) => m.getAttribute("data-channel") ?? "");
          for (const id of await page.$$eval("article.post", (a) => a.map((p) => p.id))) {
            seen.add(id);
          }
          assert.deepEqual(await brokenImages(page), [], `images of ${url}`);
          imagesSeen += await page.$$eval("img", (imgs) => imgs.length);
          url = await page.$eval("a[rel=prev]", (a) => (a as unknown as { href: string }).href)
            .catch(
              () => undefined,
            );
        }
        assert.deepEqual(
          [...seen].sort(),
          [...expected.get(channelId) ?? []].sort(),
          `posts of ${channelId}`,
        );
        postsSeen += seen.size;
      }
      assert.ok(postsSeen > 500, `${postsSeen} posts seen`);
      assert.ok(imagesSeen > 50, `${imagesSeen} images seen`);

      // An edited post's mark opens its earlier version, JavaScript still off.
      assert.ok(showcaseEdited, "the showcase's edit was backed up");
      const editedPage = channelLinks.find((l) => l.includes(`/c/${showcaseEdited?.channel}/`));
      await page.goto(editedPage as string);
      const versions = `[id="${showcaseEdited.id}"] details.versions`;
      const shown = () =>
        page.$eval(`${versions} li .msg`, (m) => (m as unknown as { innerText: string }).innerText);
      assert.equal(await shown(), "", "closed at first");
      await page.click(`${versions} summary`);
      assert.match(await shown(), /^Release 2\.0 is out/);
      assert.doesNotMatch(await shown(), /now with notes/);

      // The showcase thread's reply count leads to its thread page, JavaScript still off.
      const threadHref = await (async () => {
        await page.goto(index);
        for (const link of channelLinks) {
          await page.goto(link);
          for (let url: string | undefined = link; url;) {
            await page.goto(url);
            const href = await page.$eval(
              `[id="${showcaseRoot}"] .thread-link a`,
              (a) => (a as unknown as { href: string }).href,
            ).catch(() => undefined);
            if (href) return href;
            url = await page.$eval("a[rel=prev]", (a) => (a as unknown as { href: string }).href)
              .catch(() => undefined);
          }
        }
      })();
      assert.ok(threadHref, "the showcase root links to its thread");
      await Promise.all([
        page.waitForNavigation(),
        page.click(`[id="${showcaseRoot}"] .thread-link a`),
      ]);
      assert.equal(page.url(), threadHref);
      assert.deepEqual(
        await page.$$eval("main[data-thread] article.post", (a) => a.map((p) => p.id)),
        [showcaseRoot, ...repliesTo.get(showcaseRoot) ?? []],
      );

      // JavaScript on: search, then open the result.
      await page.setJavaScriptEnabled(true);
      await page.goto(index);
      await page.type("#q", "whiteboard planning");
      await page.waitForSelector("#results li.result a");
      const results = await page.$$eval("#results li.result", (l) => l.length);
      assert.equal(results, 1);
      await Promise.all([page.waitForNavigation(), page.click("#results li.result a")]);
      assert.equal(new URL(page.url()).hash, `#${showcaseRoot}`);
      assert.equal(await page.$eval(":target", (e) => e.id), showcaseRoot);
      // The hostile messages are on the page as text, and nothing of them became an element.
      const scriptText = await page.$$eval(
        "article .msg",
        (msgs) => msgs.map((m) => m.textContent ?? "").join("\n"),
      );
      assert.match(scriptText, /<script>alert\(2\)<\/script>/);
      assert.match(scriptText, /<img src=x onerror=alert\(1\)>/);
      assert.equal(
        await page.$$eval(".msg script, .msg iframe, .msg svg, .msg [onerror], .msg [onload]", (
          e,
        ) => e.length),
        0,
      );
      // The post's picture (lazy-loaded with JavaScript on) loads once it is in view.
      await page.waitForFunction(
        `(() => { const i = document.getElementById(${
          JSON.stringify(showcaseRoot)
        }).querySelector(".file img"); return i.complete && i.naturalWidth === 320; })()`,
      );

      // Its reply count opens the thread in place, by keyboard, and Escape closes it again.
      const url = page.url();
      const link = `[id="${showcaseRoot}"] .thread-link a`;
      await page.focus(link);
      await page.keyboard.press("Enter");
      const panel = `#thread-${showcaseRoot}`;
      await page.waitForSelector(`${panel} .thread-posts article`);
      assert.equal(page.url(), url, "no navigation");
      assert.deepEqual(
        await page.$$eval(`${panel} article`, (a) => a.map((p) => p.getAttribute("data-id"))),
        repliesTo.get(showcaseRoot),
      );
      assert.equal(await page.$eval(link, (a) => a.getAttribute("aria-expanded")), "true");
      assert.equal(await page.evaluate("document.activeElement.id"), `thread-${showcaseRoot}`);
      const threadShot = Deno.env.get("MATTERBAK_THREAD_SHOT");
      if (threadShot) {
        await page.setViewport({ width: 1000, height: 1000 });
        await page.$eval(panel, (p) => p.scrollIntoView({ block: "center" }));
        await page.screenshot({ path: threadShot });
      }
      await page.keyboard.press("Escape");
      assert.equal(await page.$(panel), null, "closed");
      assert.equal(await page.$eval(link, (a) => a.getAttribute("aria-expanded")), "false");
      assert.equal(
        await page.evaluate("document.activeElement.textContent"),
        await page.$eval(
          link,
          (a) => a.textContent,
        ),
      );

      // Filters: an author and a date range that holds nothing.
      await page.goto(index);
      await page.select("#f-author", me.id);
      await page.waitForFunction(
        '/\\d+ messages?/.test(document.getElementById("search-status").textContent)',
      );
      const mine = await page.$$eval(
        "#results .result-head strong",
        (s) => [...new Set(s.map((e) => e.textContent))],
      );
      assert.deepEqual(mine, ["Alice Backup"]);

      if (Deno.env.get("MATTERBAK_SCREENSHOTS") === "1") await screenshots(page, siteDir);

      assert.deepEqual(w.outside, [], "requests that left file://");
      assert.deepEqual(w.dialogs, [], "scripts from messages ran");
      assert.deepEqual(w.problems, []);
    } finally {
      await browser?.close();
      await h.close();
    }
  },
});

async function screenshots(page: Page, siteDir: string): Promise<void> {
  await Deno.mkdir(DOCS, { recursive: true });
  await page.goto(pathToFileURL(join(siteDir, "index.html")).href);
  await page.type("#q", "whiteboard");
  await page.waitForSelector("#results li.result a");
  await Promise.all([page.waitForNavigation(), page.click("#results li.result a")]);
  const channelPage = page.url().replace(/#.*/, "");
  await page.setViewport({ width: 1000, height: 1500 });
  for (const scheme of ["light", "dark"] as const) {
    await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: scheme }]);
    await page.goto(channelPage);
    // The showcase, from its Markdown samples down to the thread with its picture.
    await page.evaluate(
      `[...document.querySelectorAll("article.post")].find((a) => a.textContent.includes("Release 2.0")).scrollIntoView()`,
    );
    await page.evaluate("window.scrollBy(0, -8)");
    await page.waitForNetworkIdle();
    await page.screenshot({ path: join(DOCS, `view-${scheme}.png`) });
  }
}
