import assert from "node:assert/strict";
import { join } from "node:path";
import { parseChannels } from "../lib/config/channels.ts";
import { parseCredentials, secretWarnings } from "../lib/config/credentials.ts";
import { jsonErrorOffset, readConfigFile } from "../lib/config/json_file.ts";
import { ConfigError } from "../lib/util/errors.ts";

const creds = (value: unknown, env = {}) =>
  parseCredentials(JSON.stringify(value), "creds.json", env);

Deno.test("credentials: a password or a token, the token winning; env vars override the file", () => {
  assert.deepEqual(creds({ user: "amy", password: "pw", url: "https://mm.example.org" }).value, {
    user: "amy",
    url: "https://mm.example.org",
    password: "pw",
  });
  assert.deepEqual(creds({ user: "amy", password: "pw", token: "tk", url: "https://x" }).value, {
    user: "amy",
    url: "https://x",
    token: "tk",
  });
  assert.equal(
    creds({ user: "amy", url: "https://x" }, { MATTERBAK_TOKEN: "env-tk" }).value.token,
    "env-tk",
  );
  assert.equal(
    creds({ user: "amy", password: "file", url: "https://x" }, { MATTERBAK_PASSWORD: "env" }).value
      .password,
    "env",
  );
  assert.equal(creds({ user: "@amy", token: "t", url: "https://x" }).value.user, "amy");
});

Deno.test("credentials: each mistake names the file and the key", () => {
  const cases: Array<[unknown, RegExp]> = [
    [[], /creds\.json: expected an object/],
    [{ url: "https://x", password: "p" }, /creds\.json: "user" is missing/],
    [{ user: "a", password: "p" }, /creds\.json: "url" is missing/],
    [{ user: "a", url: "https://x" }, /no secret.*MATTERBAK_PASSWORD/],
    [{ user: "a", url: "ftp://x", password: "p" }, /must start with https/],
    [{ user: "a", url: "not a url", password: "p" }, /not a valid URL/],
    [
      { user: 5, url: "https://x", password: "p" },
      /"user" must be a non-empty string, got a number/,
    ],
    [{ user: "a", url: "https://x?access_token=zzz", password: "p" }, /must not carry/],
  ];
  for (const [value, pattern] of cases) {
    assert.throws(
      () => creds(value),
      (e: Error) => e instanceof ConfigError && pattern.test(e.message),
    );
  }
});

Deno.test("credentials: an optional login id (email or LDAP id) besides the username", () => {
  const parsed = creds({
    user: "amy",
    login: " amy@example.org ",
    password: "p",
    url: "https://x",
  });
  assert.deepEqual(parsed.warnings, []);
  assert.equal(parsed.value.user, "amy");
  assert.equal(parsed.value.login, "amy@example.org");
  assert.throws(
    () => creds({ user: "amy", login: "", password: "p", url: "https://x" }),
    /"login" must be a non-empty string/,
  );
});

Deno.test("credentials: a URL error never repeats the password or token the URL carries", () => {
  const urls = [
    "https://amy:hunter2@mm.example.org",
    "https://mm.example.org/?access_token=hunter2",
    "ftp://amy:hunter2@mm.example.org",
    "https://amy:hunter2@mm example.org",
    "https://amy:hunter2/x@mm.example.org",
    "mm.example.org/?access_token=hunter2",
  ];
  for (const url of urls) {
    assert.throws(
      () => creds({ user: "amy", url, password: "pw" }),
      (e: Error) =>
        e instanceof ConfigError && e.message.startsWith('creds.json: "url"') &&
        !e.message.includes("hunter2"),
      url,
    );
  }
});

Deno.test("credentials: unknown keys are warned about, not fatal", () => {
  const { warnings } = creds({ user: "a", url: "https://x", token: "t", server: "y" });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0] as string, /unknown key "server"/);
});

Deno.test("JSON syntax errors give file, line and column, with a hint for trailing commas", () => {
  assert.throws(
    () => parseChannels('{\n  "direct": ["a",]\n}', "ch.json"),
    (e: Error) =>
      e instanceof ConfigError &&
      e.message ===
        'Invalid JSON in ch.json:2:18: unexpected "]" (trailing commas are not allowed in JSON)',
  );
});

Deno.test("the JSON scanner points at the first syntax error", () => {
  const cases: Array<[string, number]> = [
    ["", 0],
    ["{", 1],
    ['{"a" 1}', 5],
    ['{"a": tru}', 6],
    ["[1, 2", 5],
    ['{"a": 1} x', 9],
    ["{'a': 1}", 1],
    ['{"a": "b\u0001"}', 8],
    ['{"a": [1, {"b": null}], "c": -1.5e3}', 36],
  ];
  for (const [text, offset] of cases) assert.equal(jsonErrorOffset(text), offset, text);
});

Deno.test("channels: matterbak's format is accepted as is", () => {
  const config = {
    teams: {
      team1: { include: ["c1", "c2"], exclude: ["c3"] },
      team2: {},
      team3: { exclude: ["c4"] },
    },
    direct: ["user1", "user2"],
    groups: { exact: [["user3", "user4"]], subset: [["user3", "user5"]] },
  };
  assert.deepEqual(parseChannels(JSON.stringify(config), "ch.json"), {
    value: config,
    warnings: [],
  });
});

Deno.test("channels: wrong shapes name the key and what was found", () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ teams: ["a"] }, /"teams" must be an object .* got a list/],
    [
      { teams: { t: { include: "general" } } },
      /"teams\.t"\.include must be a list of channel names .* got a string/,
    ],
    [{ teams: { t: [] } }, /"teams\.t" must be an object/],
    [{ direct: "bob" }, /"direct" must be a list of usernames/],
    [{ groups: { exact: ["bob"] } }, /"groups\.exact"\[0\] must be a list of usernames/],
    [{ groups: [] }, /"groups" must be an object/],
  ];
  for (const [value, pattern] of cases) {
    assert.throws(
      () => parseChannels(JSON.stringify(value), "ch.json"),
      (e: Error) => e instanceof ConfigError && pattern.test(e.message),
      String(pattern),
    );
  }
});

Deno.test("channels: unknown keys (matterbak's README said 'group') are warned about", () => {
  const { warnings } = parseChannels(
    JSON.stringify({ group: {}, teams: { t: { includes: [] } } }),
    "ch.json",
  );
  assert.equal(warnings.length, 2);
  assert.match(warnings.join("\n"), /unknown key "group"/);
  assert.match(warnings.join("\n"), /unknown key "includes"/);
});

Deno.test("a missing config file is named with the path tried", async () => {
  await assert.rejects(
    readConfigFile("/nonexistent/creds.json", "Credentials"),
    (e: Error) =>
      e instanceof ConfigError &&
      e.message === "Credentials file not found: /nonexistent/creds.json",
  );
});

Deno.test("warnings for a credentials file others can read and for plain http to another host", () => {
  const parsed = (url: string, secret = true) =>
    parseCredentials(
      JSON.stringify({ user: "a", url, ...(secret ? { token: "t" } : {}) }),
      "c.json",
      secret ? {} : { MATTERBAK_TOKEN: "t" },
    );
  assert.deepEqual(secretWarnings("c.json", parsed("https://mm.example.org"), 0o600), []);
  assert.match(
    secretWarnings("c.json", parsed("https://mm.example.org"), 0o644).join(),
    /can be read by other users \(mode 644\); run: chmod 600 c\.json/,
  );
  assert.deepEqual(
    secretWarnings("c.json", parsed("https://mm.example.org", false), 0o644),
    [],
    "no secret in the file",
  );
  assert.deepEqual(
    secretWarnings("c.json", parsed("https://mm.example.org"), null),
    [],
    "no modes on Windows",
  );
  assert.match(
    secretWarnings("c.json", parsed("http://mm.example.org"), 0o600).join(),
    /plain http: your token travels unencrypted/,
  );
  for (const local of ["http://localhost:8065", "http://127.0.0.1:8065", "http://[::1]:8065"]) {
    assert.deepEqual(secretWarnings("c.json", parsed(local), 0o600), [], local);
  }
});

Deno.test("a config file in UTF-16 with a byte order mark is read (Windows PowerShell's >)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const text = '{"teams": {"café": {}}}';
    const utf16le = new Uint8Array([
      0xff,
      0xfe,
      ...new Uint8Array(
        new Uint16Array(
          [...text].map((c) => c.charCodeAt(0)),
        ).buffer,
      ),
    ]);
    await Deno.writeFile(join(dir, "le.json"), utf16le);
    assert.equal(await readConfigFile(join(dir, "le.json"), "Channels"), text);
    await Deno.writeFile(join(dir, "bom8.json"), new Uint8Array([0xef, 0xbb, 0xbf, 0x7b, 0x7d]));
    assert.equal(await readConfigFile(join(dir, "bom8.json"), "Channels"), "{}");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
