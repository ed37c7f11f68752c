/** matterbak for Deno: the command-line entry point. */
import { main } from "./lib/cli/main.ts";

Deno.exit(await main(Deno.args));
