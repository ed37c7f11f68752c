/** matterbak for Deno: the command-line entry point. */
import { main } from "./lib/cli.ts";

Deno.exit(await main(Deno.args));
