/**
 * SIGINT/SIGTERM become one abort of the run: no new requests start, in-flight ones are
 * cancelled, and writes already under way finish (they do not watch the signal), so the run
 * can stop cleanly with 130/143. A second signal ends the process at once; atomic writes
 * guarantee that even then no final file is half-written.
 */
import { ExitCode, InterruptedError } from "../util/errors.ts";

export interface InterruptHooks {
  notify: (message: string) => void;
  /** Before a second signal ends the process: leave the terminal tidy (the status line). */
  beforeExit: () => void;
  /** Deno.exit, unless a test watches. */
  exit?: (status: number) => void;
}

export function installInterruptHandlers(
  controller: AbortController,
  hooks: InterruptHooks,
): () => void {
  const { notify, beforeExit, exit = Deno.exit } = hooks;
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM"];
  const handlers: Array<[Deno.Signal, () => void]> = [];
  for (const signal of signals) {
    const name = signal === "SIGTERM" ? "SIGTERM" : "SIGINT";
    const handler = () => {
      if (controller.signal.aborted) {
        beforeExit();
        notify(`${name} again: stopping now`);
        exit(name === "SIGTERM" ? ExitCode.sigterm : ExitCode.sigint);
        return;
      }
      notify(`${name} received: finishing current writes and stopping (again to quit at once)`);
      controller.abort(new InterruptedError(name));
    };
    try {
      Deno.addSignalListener(signal, handler);
      handlers.push([signal, handler]);
    } catch {
      // Not offered by this OS; the default behaviour stays.
    }
  }
  return () => {
    for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
  };
}
