/**
 * SIGINT/SIGTERM become one abort of the run: no new requests start, in-flight ones are
 * cancelled, and writes already under way finish (they do not watch the signal), so the run
 * can stop cleanly with 130/143. A second signal ends the process at once; atomic writes
 * guarantee that even then no final file is half-written.
 */
import { ExitCode, InterruptedError } from "../util/errors.ts";

/** Where signals come from: the process, or a test that sends them at a chosen step. */
export interface SignalSource {
  add(signal: Deno.Signal, handler: () => void): void;
  remove(signal: Deno.Signal, handler: () => void): void;
}

export const processSignals: SignalSource = {
  add: (signal, handler) => Deno.addSignalListener(signal, handler),
  remove: (signal, handler) => Deno.removeSignalListener(signal, handler),
};

export interface InterruptHooks {
  notify: (message: string) => void;
  /** Before a second signal ends the process: leave the terminal tidy (the status line). */
  beforeExit: () => void;
  /** Deno.exit, unless a test watches. */
  exit?: (status: number) => void;
  /** The process's signals unless given. */
  signals?: SignalSource | undefined;
}

export function installInterruptHandlers(
  controller: AbortController,
  hooks: InterruptHooks,
): () => void {
  const { notify, beforeExit, exit = Deno.exit, signals: source = processSignals } = hooks;
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
      source.add(signal, handler);
      handlers.push([signal, handler]);
    } catch {
      // Not offered by this OS; the default behaviour stays.
    }
  }
  return () => {
    for (const [signal, handler] of handlers) source.remove(signal, handler);
  };
}
