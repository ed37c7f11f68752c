/**
 * The repository's folder as a file system path. A file URL's `pathname` is not one: on Windows
 * it is `/D:/a/...`, and a space stays `%20`.
 */
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
