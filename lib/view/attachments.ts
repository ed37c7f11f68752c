/**
 * How the site offers an attachment, decided from its name and type alone (pure). A browser
 * picks what to do with a `file://` link by the file's extension, and Chromium ignores the
 * `download` attribute there: a link to `x.html`, `x.svg` or `x.xhtml` opens it as a page of
 * the site, with the site's files within reach. So the name a file gets in the site, not the
 * link, is what keeps it inert.
 */
import { isContainedComponent, safeName } from "../store/safe_name.ts";

/** What a page shows of an attachment: a picture, a player, or a link. */
export type Shown = "image" | "video" | "audio" | "link";

/**
 * Media shown inline: each MIME type with the extensions a browser maps to a matching type.
 * No SVG: inert in <img>, but its link would open it as a document that runs scripts.
 */
const MEDIA: Record<string, { shown: Exclude<Shown, "link">; extensions: readonly string[] }> = {
  "image/png": { shown: "image", extensions: ["png"] },
  "image/jpeg": { shown: "image", extensions: ["jpg", "jpeg"] },
  "image/gif": { shown: "image", extensions: ["gif"] },
  "image/webp": { shown: "image", extensions: ["webp"] },
  "video/mp4": { shown: "video", extensions: ["mp4", "m4v"] },
  "video/webm": { shown: "video", extensions: ["webm"] },
  "video/ogg": { shown: "video", extensions: ["ogv"] },
  "audio/mpeg": { shown: "audio", extensions: ["mp3"] },
  "audio/mp4": { shown: "audio", extensions: ["m4a"] },
  "audio/x-m4a": { shown: "audio", extensions: ["m4a"] },
  "audio/ogg": { shown: "audio", extensions: ["ogg", "oga", "opus"] },
  "audio/opus": { shown: "audio", extensions: ["opus"] },
  "audio/wav": { shown: "audio", extensions: ["wav"] },
  "audio/x-wav": { shown: "audio", extensions: ["wav"] },
  "audio/wave": { shown: "audio", extensions: ["wav"] },
  "audio/flac": { shown: "audio", extensions: ["flac"] },
  "audio/webm": { shown: "audio", extensions: ["weba"] },
};

/**
 * Extensions a file keeps in the site: those a browser opening the file shows as a picture, a
 * player or plain text, or only downloads (archives, office documents, `bin`). Everything else
 * (html, svg, xhtml, xml, mht, pdf, whose viewer runs scripts, and what no one has checked)
 * gets `.bin`, which every browser and web server maps to application/octet-stream: a download.
 */
export const INERT_EXTENSIONS: ReadonlySet<string> = new Set([
  ...Object.values(MEDIA).flatMap((m) => m.extensions),
  ...["avif", "bmp", "ico", "heic", "tif", "tiff", "mov", "mkv", "aac"],
  ...["txt", "log", "csv", "tsv", "json"],
  ...["zip", "gz", "tgz", "bz2", "xz", "7z", "rar", "tar", "zst", "bin"],
  ...["doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp", "rtf", "epub"],
]);

/** The suffix that makes any other file a download. */
export const INERT_SUFFIX = ".bin";

/** Lower-case extension of a file name, "" without one. */
function extensionOf(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
}

/**
 * The name the data dir's attachment file `base` gets in the site: its own when its extension
 * is inert, else `<base>.bin` (cut to fit 255 bytes, the suffix kept). A name it gives is its
 * own result, so a site file whose name differs from it was placed by something else.
 */
export function siteFileName(base: string): string {
  if (INERT_EXTENSIONS.has(extensionOf(base)) && isContainedComponent(base)) return base;
  return safeName(`${base}${INERT_SUFFIX}`, 255);
}

/**
 * What a page shows of the site file `name` of type `mime` (the server's word): a picture or a
 * player only when both the extension and the type are media of the same kind, so a file that
 * lies about one of them is a link.
 */
export function shownAs(name: string, mime: string): Shown {
  const media = MEDIA[mime.split(";")[0]?.trim().toLowerCase() ?? ""];
  return media?.extensions.includes(extensionOf(name)) ? media.shown : "link";
}
