/** Which account a session is checked against, on a stand-in for the API (no server). */
import assert from "node:assert/strict";
import { AuthError } from "../lib/util/errors.ts";
import type { MattermostApi } from "../lib/api/mattermost.ts";
import type { User } from "../lib/model/records.ts";
import { openSession } from "../lib/api/session.ts";

const user = (id: string, username: string): User => ({
  id: id.repeat(26),
  username,
  update_at: 1,
  delete_at: 0,
});

/**
 * An API whose client logs in as `loginId`, whose login answers with `loggedIn` and whose
 * /users/me answers with `me`.
 */
function fakeApi(loginId: string, loggedIn: User, me: User) {
  const calls: string[] = [];
  const client = { root: "https://mm.example.org", loginId, ownsSession: false };
  const api = {
    client,
    login: () => {
      calls.push(`login ${client.loginId}`);
      client.ownsSession = true;
      return Promise.resolve(loggedIn);
    },
    me: () => Promise.resolve(me),
    logout: () => {
      calls.push("logout");
      return Promise.resolve();
    },
  };
  return { api: api as unknown as MattermostApi, calls };
}

Deno.test("a password login uses the login id and is checked by the account id it answered with", async () => {
  const alice = user("a", "alice");
  const good = fakeApi("alice@example.com", alice, alice);
  const credentials = {
    user: "alice",
    login: "alice@example.com",
    password: "pw",
    url: "https://mm.example.org",
  };
  const session = await openSession(good.api, credentials, "creds.json");
  assert.equal(session.me.id, alice.id);
  assert.deepEqual(good.calls, ["login alice@example.com"]);

  // /users/me naming another account than the login answer: refused, and the session closed.
  const renamed = fakeApi("alice@example.com", alice, { ...user("b", "alice") });
  await assert.rejects(
    openSession(renamed.api, credentials, "creds.json"),
    (e: Error) =>
      e instanceof AuthError && /session opened for user "alice" belongs to/.test(e.message),
  );
  assert.deepEqual(renamed.calls, ["login alice@example.com", "logout"]);
});
