/** The process's console as an Output: plain lines, and on a terminal a live status line. */
import type { Output } from "./progress.ts";

/** Console output; on a terminal the status line is redrawn in place below the log lines. */
export function consoleOutput(): Output {
  const encoder = new TextEncoder();
  if (!Deno.stdout.isTerminal()) {
    // deno-lint-ignore no-console
    return { out: (line) => console.log(line), err: (line) => console.error(line) };
  }
  let status = "";
  const write = (text: string) => Deno.stdout.writeSync(encoder.encode(text));
  const above = (print: () => void) => {
    if (status) write("\r\x1b[2K");
    print();
    if (status) write(status);
  };
  return {
    // deno-lint-ignore no-console
    out: (line) => above(() => console.log(line)),
    // deno-lint-ignore no-console
    err: (line) => above(() => console.error(line)),
    status: (line) => {
      // Short of the last columns: the ^C a terminal echoes after it must not wrap the line,
      // or clearing the line would leave the old status above.
      const width = Deno.consoleSize().columns - 3;
      status = line.length > width ? line.slice(0, width) : line;
      write(`\r\x1b[2K${status}`);
    },
  };
}
