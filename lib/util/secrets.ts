/**
 * The secrets of a run (the password, a personal access token, the session token a login
 * opens) and the one scrubber every string leaving the process passes through: console lines,
 * warnings, the final error, the `--report` file. The API client registers what it holds; a
 * server that echoes a secret back (an error page quoting the Authorization header or the
 * login body) then cannot make us print or store it.
 *
 * A secret is recognised in the forms a server or a proxy would echo it in: as is, JSON-escaped
 * (also as Go escapes <, > and &), URL-encoded, HTML-escaped and base64 (alone, and as the
 * `user:password` of Basic auth), and as a fragment of FRAGMENT_LENGTH characters or more of
 * any of those (an echo cut short).
 */

export const REDACTED = "[REDACTED]";

/**
 * Secrets shorter than this are not scrubbed: every short word of every message would go.
 * Mattermost refuses passwords under 5 characters (model.PasswordMinimumLength) and its
 * tokens have 26, so no real secret is that short.
 */
const MIN_SECRET_LENGTH = 4;

/**
 * A run of this many characters of a secret's form is scrubbed wherever it appears. Shorter
 * fragments are kept: they would also match ordinary words ("password" in a password), and a
 * cut this short tells little. Our own messages never cut a server's text before scrubbing it.
 */
const FRAGMENT_LENGTH = 12;

export class SecretRegistry {
  /** Every form of every secret, each matched whole. */
  #forms = new Set<string>();
  /** Every FRAGMENT_LENGTH-long piece of the forms at least that long. */
  #fragments = new Set<string>();

  /**
   * Registers a secret. `basicUser` adds the base64 `user:secret` of HTTP Basic auth, which a
   * proxy may echo for a password.
   */
  add(secret: string, options: { basicUser?: string | undefined } = {}): void {
    if (secret.length < MIN_SECRET_LENGTH) return;
    const forms = echoForms(secret);
    if (options.basicUser !== undefined) {
      const basic = base64(`${options.basicUser}:${secret}`);
      forms.add(basic);
      forms.add(basic.replace(/=+$/, ""));
    }
    for (const form of forms) {
      this.#forms.add(form);
      for (let i = 0; i + FRAGMENT_LENGTH <= form.length; i++) {
        this.#fragments.add(form.slice(i, i + FRAGMENT_LENGTH));
      }
    }
  }

  /** `text` with every occurrence of a secret, in any of its forms, replaced by REDACTED. */
  scrub(text: string): string {
    if (this.#forms.size === 0) return text;
    const hit = new Uint8Array(text.length);
    let any = false;
    for (const form of this.#forms) {
      for (let at = text.indexOf(form); at !== -1; at = text.indexOf(form, at + 1)) {
        hit.fill(1, at, at + form.length);
        any = true;
      }
    }
    for (let i = 0; i + FRAGMENT_LENGTH <= text.length; i++) {
      if (this.#fragments.has(text.slice(i, i + FRAGMENT_LENGTH))) {
        hit.fill(1, i, i + FRAGMENT_LENGTH);
        any = true;
      }
    }
    if (!any) return text;
    let out = "";
    for (let i = 0; i < text.length;) {
      if (!hit[i]) {
        out += text[i++];
        continue;
      }
      out += REDACTED;
      while (i < text.length && hit[i]) i++;
    }
    return out;
  }

  /** A copy of a JSON-like value with every string in it (keys too) scrubbed. */
  scrubValue<T>(value: T): T {
    if (typeof value === "string") return this.scrub(value) as T;
    if (Array.isArray(value)) return value.map((item) => this.scrubValue(item)) as T;
    if (typeof value === "object" && value !== null) {
      return Object.fromEntries(
        Object.entries(value).map(([key, item]) => [this.scrub(key), this.scrubValue(item)]),
      ) as T;
    }
    return value;
  }
}

/**
 * The forms in which a secret comes back when a server or proxy echoes what it was sent: as
 * sent (as is, or inside the JSON of a login body), and each of those once more escaped by
 * whatever quotes it (a JSON error message, an HTML page, a URL), or in base64.
 */
function echoForms(secret: string): Set<string> {
  const json = jsonEscape(secret);
  // Go's encoding/json (the server's) also escapes <, > and & and the two line separators.
  const goJson = json.replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
  const forms = new Set<string>();
  for (const sent of new Set([secret, json, goJson])) {
    const url = encodeURIComponent(sent);
    forms.add(sent);
    forms.add(jsonEscape(sent));
    forms.add(url);
    forms.add(url.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()));
    forms.add(url.replace(/%20/g, "+"));
    forms.add(htmlEscape(sent, "&quot;", "&#39;"));
    forms.add(htmlEscape(sent, "&#34;", "&#39;"));
    forms.add(htmlEscape(sent, "&quot;", "&#x27;"));
  }
  const b64 = base64(secret);
  forms.add(b64);
  forms.add(b64.replace(/=+$/, ""));
  forms.add(b64.replace(/=+$/, "").replaceAll("+", "-").replaceAll("/", "_"));
  return forms;
}

function jsonEscape(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}

function htmlEscape(text: string, quote: string, apostrophe: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', quote).replaceAll("'", apostrophe);
}

function base64(text: string): string {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}
