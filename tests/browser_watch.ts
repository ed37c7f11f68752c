/** What the browser tests watch on a page: requests that leave file://, and dialogs. */
import type { Page } from "puppeteer-core";

export interface Watch {
  outside: string[];
  dialogs: string[];
}

/**
 * Aborts and records every request that leaves file:// (data: is the browser's own player,
 * picker and date icons; the pages' CSP allows no data: of theirs), records and dismisses every
 * dialog. The page must intercept requests (setRequestInterception).
 */
export function watchPage(page: Page): Watch {
  const w: Watch = { outside: [], dialogs: [] };
  page.on("request", (request) => {
    const url = request.url();
    if (url.startsWith("file://") || url.startsWith("data:")) request.continue();
    else {
      w.outside.push(url);
      request.abort();
    }
  });
  page.on("dialog", (dialog) => {
    w.dialogs.push(dialog.message());
    dialog.dismiss();
  });
  return w;
}
