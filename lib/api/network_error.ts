/**
 * Why a request got no answer at all, in words a user can act on. fetch rejects with a bare
 * "fetch failed" TypeError; the cause beneath it is Deno's (hyper's, rustls') own text, such
 * as "client error (Connect): tcp connect error: Connection refused (os error 111)".
 */

/** The kinds of failure, recognised in the causes' messages, first match wins. */
const KINDS: ReadonlyArray<readonly [RegExp, string]> = [
  [/connection refused/i, "connection refused (is the server running on that port?)"],
  [
    /dns error|failed to lookup address|name or service not known|nodename nor servname|no such host/i,
    "DNS lookup failed (is the host name right?)",
  ],
  [
    /certificate|tls|ssl|handshake|received corrupt message/i,
    "TLS error (the https connection could not be set up)",
  ],
  [/timed out|timeout/i, "timeout"],
  [
    /connection reset|broken pipe|connection closed/i,
    "the connection was closed by the other side",
  ],
  [/network is unreachable|no route to host|host is unreachable/i, "network unreachable"],
];

/** The messages of an error and of its causes, outermost first. */
function messages(error: unknown): string[] {
  const out: string[] = [];
  for (let e = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    out.push(e.message);
  }
  return out;
}

/**
 * "connection refused (...)", "DNS lookup failed (...)", "TLS error (...)", "timeout" and the
 * like, followed by the innermost detail; the plain message when nothing is recognised.
 */
export function describeNetworkFailure(error: unknown): string {
  const all = messages(error);
  const detail = (all.at(-1) ?? String(error))
    // The URL is already named by the caller's message.
    .replace(/^error sending request for url \([^)]*\):\s*/, "")
    .replace(/^client error \(Connect\):\s*/, "");
  const kind = KINDS.find(([pattern]) => all.some((m) => pattern.test(m)))?.[1];
  return kind ? `${kind}: ${detail}` : detail;
}
