import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { generateWorld, HOSTILE_FILE_NAMES } from "./simulator/generate.ts";
import { type Simulator, type SimulatorOptions, startSimulator } from "./simulator/server.ts";
import { World } from "./simulator/world.ts";

interface Call {
  method?: string;
  token?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

async function call(sim: Simulator, path: string, opts: Call = {}): Promise<Response> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  return await fetch(`${sim.url}/api/v4${path}`, {
    method: opts.method ?? (opts.body === undefined ? "GET" : "POST"),
    headers,
    ...(opts.body === undefined ? {} : { body: JSON.stringify(opts.body) }),
  });
}

/** Reads the body as JSON and asserts the status. */
// deno-lint-ignore no-explicit-any
async function json(res: Response, status = 200): Promise<any> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  return text === "" ? undefined : JSON.parse(text);
}

/** Small fixed world: alice (member of everything), bob, carol; one team and one channel. */
function smallWorld() {
  const world = new World();
  const alice = world.addUser({ username: "alice", password: "pw" });
  const bob = world.addUser({ username: "bob", password: "pw" });
  const carol = world.addUser({ username: "carol" });
  const team = world.addTeam({ name: "eng" });
  for (const u of [alice, bob, carol]) world.addTeamMember(team.id, u.id);
  const channel = world.addChannel({ teamId: team.id, name: "general", type: "O" });
  world.addChannelMember(channel.id, alice.id);
  world.addChannelMember(channel.id, bob.id);
  const token = world.addPersonalAccessToken(alice.id);
  return { world, alice, bob, carol, team, channel, token };
}

async function withSim(
  world: World,
  fn: (sim: Simulator) => Promise<void>,
  opts: Omit<SimulatorOptions, "world"> = {},
): Promise<void> {
  const sim = await startSimulator({ world, ...opts });
  try {
    await fn(sim);
  } finally {
    await sim.close();
  }
}

Deno.test("every response carries version and request ids, errors are AppErrors", async () => {
  const { world, token } = smallWorld();
  await withSim(world, async (sim) => {
    const unknown = await call(sim, "/nope", { token });
    assert.equal(unknown.headers.get("X-Version-ID"), "9.11.0.9.11.0.abc123.false");
    assert.match(unknown.headers.get("X-Request-ID") ?? "", /^[a-z0-9]{26}$/);
    const err = await json(unknown, 404);
    assert.equal(err.id, "api.context.404.app_error");
    assert.equal(err.status_code, 404);

    assert.equal(
      (await json(await call(sim, "/users/me"), 401)).id,
      "api.context.session_expired.app_error",
    );
    assert.equal((await json(await call(sim, "/system/ping"))).status, "OK");
    const me = await json(
      await call(sim, "/users/me", { headers: { Authorization: `bEaReR ${token}` } }),
    );
    assert.equal(me.username, "alice");
    assert.equal("last_picture_update" in me, false);
  });
});

Deno.test("password login returns 200 with the Token header and logout revokes the session", async () => {
  const { world, alice } = smallWorld();
  await withSim(world, async (sim) => {
    const res = await call(sim, "/users/login", { body: { login_id: "ALICE", password: "pw" } });
    const user = await json(res);
    assert.equal(user.id, alice.id);
    const token = res.headers.get("Token") ?? "";
    assert.equal(res.headers.get("Set-Cookie"), null);
    assert.ok(world.sessions.has(token));
    await json(await call(sim, "/users/me", { token }));
    await json(await call(sim, "/users/logout", { token, method: "POST" }));
    assert.equal(world.sessions.has(token), false);
    await json(await call(sim, "/users/me", { token }), 401);

    const bad = await call(sim, "/users/login", { body: { login_id: "alice", password: "x" } });
    assert.equal((await json(bad, 401)).id, "api.user.login.invalid_credentials_email_username");
    const byEmail = await call(sim, "/users/login", {
      body: { login_id: "alice@example.com", password: "pw" },
    });
    await json(byEmail);
  });
});

Deno.test("sign-in with username or email can be turned off; the error says what is accepted", async () => {
  const { world, alice } = smallWorld();
  const login = (sim: Simulator, loginId: string) =>
    call(sim, "/users/login", { body: { login_id: loginId, password: "pw" } });
  await withSim(world, async (sim) => {
    const byName = await json(await login(sim, "alice"), 401);
    assert.equal(byName.id, "api.user.login.invalid_credentials_email");
    assert.equal((await json(await login(sim, "ALICE@example.com"))).id, alice.id);
  }, { signInWithUsername: false });
  await withSim(world, async (sim) => {
    const byEmail = await json(await login(sim, "alice@example.com"), 401);
    assert.equal(byEmail.id, "api.user.login.invalid_credentials_username");
    assert.equal((await json(await login(sim, "alice"))).id, alice.id);
  }, { signInWithEmail: false });
});

Deno.test("MFA and deactivated users fail login with their specific error ids", async () => {
  const world = new World();
  world.addUser({ username: "mfa", password: "pw", mfaSecret: "123456" });
  world.addUser({ username: "gone", password: "pw", delete_at: 1 });
  await withSim(world, async (sim) => {
    const login = (body: unknown) => call(sim, "/users/login", { body });
    const missing = await json(await login({ login_id: "mfa", password: "pw" }), 400);
    assert.equal(missing.id, "mfa.validate_token.authenticate.app_error");
    const malformed = await json(await login({ login_id: "mfa", password: "pw", token: "1" }), 400);
    assert.equal(malformed.id, "mfa.validate_token.authenticate.app_error");
    const wrong = await json(
      await login({ login_id: "mfa", password: "pw", token: "654321" }),
      401,
    );
    assert.equal(wrong.id, "api.user.check_user_mfa.bad_code.app_error");
    const ok = await json(await login({ login_id: "mfa", password: "pw", token: "123456" }));
    assert.equal(ok.mfa_active, true);
    const gone = await json(await login({ login_id: "gone", password: "pw" }), 401);
    assert.equal(gone.id, "api.user.login.inactive.app_error");
  });
});

Deno.test("an MMAUTHTOKEN cookie beats the Authorization header and cookie writes need CSRF", async () => {
  const { world, token, alice } = smallWorld();
  await withSim(world, async (sim) => {
    const stale = await call(sim, "/users/me", {
      token,
      headers: { Cookie: "MMAUTHTOKEN=bogus" },
    });
    await json(stale, 401);
    assert.equal(sim.requests.at(-1)?.cookie, "MMAUTHTOKEN=bogus");
    assert.equal(sim.requests.at(-1)?.authorization, `Bearer ${token}`);

    const session = world.createSession(alice.id);
    const cookie = { Cookie: `MMAUTHTOKEN=${session.token}` };
    await json(await call(sim, "/users/me", { headers: cookie }));
    await json(await call(sim, "/users/ids", { headers: cookie, body: [alice.id] }), 401);
    const withCsrf = await call(sim, "/users/ids", {
      headers: { ...cookie, "X-CSRF-Token": session.csrf_token },
      body: [alice.id],
    });
    assert.equal((await json(withCsrf)).length, 1);
  });
});

Deno.test("channel posts per_page is capped at 200, 0 gives an empty page, junk gives 60", async () => {
  const { world, alice, channel, token } = smallWorld();
  for (let i = 0; i < 250; i++) world.addPostRecord({ channelId: channel.id, userId: alice.id });
  await withSim(world, async (sim) => {
    const page = async (q: string) =>
      (await json(await call(sim, `/channels/${channel.id}/posts?${q}`, { token }))).order.length;
    assert.equal(await page("per_page=500"), 200);
    assert.equal(await page("per_page=0"), 0);
    assert.equal(await page("per_page=-5"), 60);
    assert.equal(await page("per_page=abc"), 60);
    assert.equal(await page("per_page=200&page=1"), 50);
    assert.equal(await page("per_page=200&page=-1"), 200);
  });
});

Deno.test("since=0 or no since is the newest page of 60, not a change query", async () => {
  const { world, alice, channel, token } = smallWorld();
  for (let i = 0; i < 250; i++) world.addPostRecord({ channelId: channel.id, userId: alice.id });
  const newest = world.channelPosts(channel.id).slice(-60).map((p) => p.id).reverse();
  await withSim(world, async (sim) => {
    for (const q of ["since=0", "since=", ""]) {
      const res = await call(sim, `/channels/${channel.id}/posts?${q}`, { token });
      assert.ok(res.headers.get("ETag"), "page mode carries the channel ETag");
      const list = await json(res);
      assert.deepEqual(list.order, newest, q);
      assert.notEqual(list.prev_post_id, "", "older posts exist");
    }
  });
});

Deno.test("before and after compare create_at strictly, also for deleted or missing anchors", async () => {
  const { world, alice, channel, token } = smallWorld();
  const t = world.now() + 1000;
  const a = world.addPost({ channelId: channel.id, userId: alice.id, createAt: t });
  const b = world.addPost({ channelId: channel.id, userId: alice.id, createAt: t });
  const c = world.addPost({ channelId: channel.id, userId: alice.id, createAt: t + 1 });
  const d = world.addPost({ channelId: channel.id, userId: alice.id, createAt: t + 2 });
  world.deletePost(c.id);
  await withSim(world, async (sim) => {
    const list = (q: string) =>
      call(sim, `/channels/${channel.id}/posts?${q}`, { token }).then((r) => json(r));
    const before = await list(`before=${b.id}`);
    assert.deepEqual(before.order, []);
    assert.equal(before.next_post_id, b.id);
    assert.equal(before.prev_post_id, "");
    assert.deepEqual((await list(`after=${a.id}`)).order, [d.id]);
    // The deleted anchor still provides its create_at.
    const afterDeleted = await list(`after=${c.id}&per_page=1`);
    assert.deepEqual(afterDeleted.order, [d.id]);
    assert.equal(afterDeleted.prev_post_id, c.id);
    assert.deepEqual((await list(`before=${c.id}`)).order.sort(), [a.id, b.id].sort());
    assert.deepEqual((await list(`before=${world.newId()}`)).order, []);
    const first = await list("per_page=1");
    assert.deepEqual(first.order, [d.id]);
    assert.equal(first.next_post_id, "");
    assert.ok([a.id, b.id].includes(first.prev_post_id));
    await json(await call(sim, `/channels/${channel.id}/posts?before=bad`, { token }), 400);
  });
});

Deno.test("prev_post_id is empty after a full page ending on a millisecond older posts share", async () => {
  const { world, alice, channel, token } = smallWorld();
  const t = world.now() + 1000;
  // The 10 oldest posts share one millisecond (as a bulk import makes them), 195 come after.
  const shared = Array.from(
    { length: 10 },
    () => world.addPost({ channelId: channel.id, userId: alice.id, createAt: t }).id,
  );
  for (let i = 1; i <= 195; i++) {
    world.addPost({ channelId: channel.id, userId: alice.id, createAt: t + i });
  }
  await withSim(world, async (sim) => {
    const list = (q: string) =>
      call(sim, `/channels/${channel.id}/posts?per_page=200&${q}`, { token }).then((r) => json(r));
    const first = await list("");
    assert.equal(first.order.length, 200);
    assert.equal(first.prev_post_id, "", "although 5 posts of that millisecond remain");
    const onShared = first.order.filter((id: string) => shared.includes(id));
    assert.equal(onShared.length, 5);
    // Asking before a post of that millisecond finds nothing (strict); before the oldest newer
    // post finds all ten.
    assert.deepEqual((await list(`before=${onShared[0]}`)).order, []);
    const cursor = first.order[first.order.length - onShared.length - 1];
    assert.deepEqual((await list(`before=${cursor}`)).order.sort(), [...shared].sort());
  });
});

Deno.test("page results carry roots of replies and, unless skipFetchThreads, whole threads", async () => {
  const { world, alice, channel, token } = smallWorld();
  const root = world.addPost({ channelId: channel.id, userId: alice.id, message: "root" });
  const r1 = world.addPost({ channelId: channel.id, userId: alice.id, rootId: root.id });
  world.addPost({ channelId: channel.id, userId: alice.id });
  const r2 = world.addPost({ channelId: channel.id, userId: alice.id, rootId: root.id });
  const rootNow = world.post(root.id);
  assert.equal(rootNow?.update_at, r2.create_at);
  assert.equal(rootNow?.reply_count, 2);
  assert.equal(rootNow?.last_reply_at, r2.create_at);
  await withSim(world, async (sim) => {
    const url = `/channels/${channel.id}/posts?per_page=1`;
    const full = await json(await call(sim, url, { token }));
    assert.deepEqual(full.order, [r2.id]);
    assert.deepEqual(Object.keys(full.posts).sort(), [root.id, r1.id, r2.id].sort());
    const skip = await json(await call(sim, `${url}&skipFetchThreads=true`, { token }));
    assert.deepEqual(Object.keys(skip.posts).sort(), [root.id, r2.id].sort());
    assert.equal(skip.posts[r2.id].reply_count, 2);
  });
});

Deno.test("since returns at most 1000 changes, tombstones and hidden edit-history copies", async () => {
  const { world, alice, channel, token } = smallWorld();
  const old = world.addPost({ channelId: channel.id, userId: alice.id, message: "old root" });
  const reply = world.addPost({ channelId: channel.id, userId: alice.id, rootId: old.id });
  const edited = world.addPost({ channelId: channel.id, userId: alice.id, message: "first" });
  const since = world.now();
  world.advance(10);
  // A reaction leaves the root alone; an edit (or a new reply) would touch it.
  world.addReaction(reply.id, alice.id, "smile");
  world.editPost(edited.id, "edited");
  const doomed = world.addPost({ channelId: channel.id, userId: alice.id, message: "secret" });
  world.addReaction(doomed.id, alice.id, "smile");
  world.deletePost(doomed.id);
  await withSim(world, async (sim) => {
    const res = await call(sim, `/channels/${channel.id}/posts?since=${since}&per_page=1`, {
      token,
    });
    assert.equal(res.headers.get("ETag"), null);
    const list = await json(res);
    assert.equal(list.next_post_id, "");
    assert.equal(list.prev_post_id, "");
    const history = Object.values(list.posts).find((p) =>
      (p as { original_id: string }).original_id === edited.id
    ) as Record<string, unknown>;
    assert.ok(history, "history copy present");
    assert.ok((history.delete_at as number) > 0);
    assert.equal(history.message, "");
    assert.deepEqual(list.posts[doomed.id].metadata, {});
    assert.equal(list.posts[doomed.id].message, "");
    assert.equal(list.posts[edited.id].message, "edited");
    // The root did not change after `since`: present in posts, absent from order.
    assert.ok(list.posts[old.id]);
    assert.equal(list.order.includes(old.id), false);
    assert.equal(list.order.length, 4);
  });

  const bulk = smallWorld();
  for (let i = 0; i < 1500; i++) {
    bulk.world.addPostRecord({ channelId: bulk.channel.id, userId: bulk.alice.id });
  }
  await withSim(bulk.world, async (sim) => {
    const url = `/channels/${bulk.channel.id}/posts?since=1&page=1&per_page=10`;
    const list = await json(await call(sim, url, { token: bulk.token }));
    assert.equal(list.order.length, 1000);
    const times = list.order.map((id: string) => list.posts[id].create_at);
    assert.deepEqual(times, [...times].sort((x: number, y: number) => y - x));
  });
});

Deno.test("with replica lag, since leaves out a change until the world clock passes its update_at plus the lag", async () => {
  const { world, alice, channel, token } = smallWorld();
  const slow = world.addPost({ channelId: channel.id, userId: alice.id, message: "slow commit" });
  const fast = world.addPost({ channelId: channel.id, userId: alice.id, message: "fast commit" });
  const since = slow.create_at - 1;
  const lag = (post: { id: string }) => post.id === slow.id ? 60_000 : 0;
  await withSim(world, async (sim) => {
    const url = `/channels/${channel.id}/posts?since=${since}`;
    const early = await json(await call(sim, url, { token }));
    assert.deepEqual(early.order, [fast.id], "the later, faster change is visible first");
    world.advance(60_000);
    const later = await json(await call(sim, url, { token }));
    assert.deepEqual(later.order, [fast.id, slow.id]);
  }, { sinceLagMs: lag });
});

Deno.test("the channel posts ETag is channel-wide and If-None-Match gives an empty 304", async () => {
  const { world, alice, channel, token } = smallWorld();
  const p = world.addPost({ channelId: channel.id, userId: alice.id });
  world.addPost({ channelId: channel.id, userId: alice.id });
  await withSim(world, async (sim) => {
    const first = await call(sim, `/channels/${channel.id}/posts?per_page=1`, { token });
    await json(first);
    const etag = first.headers.get("ETag") ?? "";
    assert.equal(etag, `9.11.0.${world.channelMaxPostUpdateAt(channel.id)}`);
    const other = await call(sim, `/channels/${channel.id}/posts?page=1&per_page=1`, { token });
    await json(other);
    assert.equal(other.headers.get("ETag"), etag);
    const cached = await call(sim, `/channels/${channel.id}/posts?per_page=1`, {
      token,
      headers: { "If-None-Match": etag },
    });
    assert.equal(cached.status, 304);
    assert.equal(await cached.text(), "");
    assert.equal(cached.headers.get("ETag"), etag);
    world.addReaction(p.id, alice.id, "smile");
    const changed = await call(sim, `/channels/${channel.id}/posts?per_page=1`, {
      token,
      headers: { "If-None-Match": etag },
    });
    await json(changed);
    assert.notEqual(changed.headers.get("ETag"), etag);
  });
});

Deno.test("threads: requested post first, perPage over 200 is a 400, has_next pages", async () => {
  const { world, alice, channel, token } = smallWorld();
  const root = world.addPost({ channelId: channel.id, userId: alice.id });
  const replies = Array.from(
    { length: 3 },
    () => world.addPost({ channelId: channel.id, userId: alice.id, rootId: root.id }),
  );
  const last = replies[2]?.id ?? "";
  await withSim(world, async (sim) => {
    await json(await call(sim, `/posts/${root.id}/thread?perPage=201`, { token }), 400);
    const page = await json(
      await call(sim, `/posts/${last}/thread?perPage=2&direction=down`, { token }),
    );
    assert.deepEqual(page.order, [last, root.id, replies[0]?.id]);
    assert.equal(page.has_next, true);
    const whole = await json(await call(sim, `/posts/${root.id}/thread`, { token }));
    assert.equal(whole.order[0], root.id);
    assert.equal(whole.order.length, 4);
    assert.equal("has_next" in whole, false);
  });
});

Deno.test("GET /posts/{id}: one post with its ETag; deleted or unreadable ones as the server refuses them", async () => {
  const { world, team, alice, bob, channel, token } = smallWorld();
  const post = world.addPost({ channelId: channel.id, userId: bob.id, message: "hello" });
  const gone = world.addPost({ channelId: channel.id, userId: bob.id, message: "gone" });
  world.deletePost(gone.id);
  const secret = world.addChannel({ teamId: team.id, name: "secret", type: "P" });
  world.addChannelMember(secret.id, bob.id);
  const hidden = world.addPost({ channelId: secret.id, userId: bob.id, message: "hidden" });
  const open = world.addChannel({ teamId: team.id, name: "open", type: "O" });
  const visible = world.addPost({ channelId: open.id, userId: bob.id, message: "visible" });
  await withSim(world, async (sim) => {
    const res = await call(sim, `/posts/${post.id}`, { token });
    const etag = res.headers.get("ETag");
    assert.deepEqual(await json(res), world.post(post.id));
    assert.equal(etag, `9.11.0.${post.id}.${world.post(post.id)?.update_at}`);
    const cached = await call(sim, `/posts/${post.id}`, {
      token,
      headers: { "If-None-Match": etag ?? "" },
    });
    assert.equal(cached.status, 304);
    await cached.body?.cancel();
    // app/post.go GetSinglePost: deleted posts are not found without include_deleted, which
    // api4/post.go getPost allows only system admins.
    assert.equal(
      (await json(await call(sim, `/posts/${gone.id}`, { token }), 404)).id,
      "app.post.get.app_error",
    );
    assert.equal(
      (await json(await call(sim, `/posts/${gone.id}?include_deleted=true`, { token }), 403)).id,
      "api.context.permissions.app_error",
    );
    await json(await call(sim, `/posts/${hidden.id}`, { token }), 403);
    // A public channel's posts are readable by the team's members (GetPostIfAuthorized).
    assert.equal((await json(await call(sim, `/posts/${visible.id}`, { token }))).id, visible.id);
    assert.equal(world.isChannelMember(open.id, alice.id), false);
  });
});

Deno.test("archived channels are listed only with include_deleted, parsed like Go booleans", async () => {
  const { world, team, channel, alice, token } = smallWorld();
  const archived = world.addChannel({ teamId: team.id, name: "old", type: "P" });
  world.addChannelMember(archived.id, alice.id);
  world.archiveChannel(archived.id);
  await withSim(world, async (sim) => {
    const ids = async (q: string) =>
      (await json(await call(sim, `/users/me/channels?${q}`, { token }))).map((c: { id: string }) =>
        c.id
      )
        .sort();
    assert.deepEqual(await ids(""), [channel.id]);
    assert.deepEqual(await ids("include_deleted=yes"), [channel.id]);
    for (const v of ["1", "t", "T", "TRUE", "true", "True"]) {
      assert.deepEqual(await ids(`include_deleted=${v}`), [channel.id, archived.id].sort());
    }
    assert.deepEqual(await ids(`include_deleted=true&last_delete_at=${archived.delete_at + 1}`), [
      channel.id,
    ]);
    const byName = `/teams/${team.id}/channels/name/old`;
    await json(await call(sim, byName, { token }), 404);
    await json(await call(sim, `${byName}?include_deleted=true`, { token }));
  });
});

Deno.test("with ExperimentalViewArchivedChannels off, archived channels are listed but their posts are 403", async () => {
  const { world, team, channel, alice, token } = smallWorld();
  const archived = world.addChannel({ teamId: team.id, name: "old", type: "O" });
  world.addChannelMember(archived.id, alice.id);
  world.addPost({ channelId: archived.id, userId: alice.id });
  world.archiveChannel(archived.id);
  await withSim(world, async (sim) => {
    const listed = await json(
      await call(sim, "/users/me/channels?include_deleted=true", { token }),
    );
    assert.ok(listed.some((c: { id: string }) => c.id === archived.id));
    const members = await json(await call(sim, `/channels/${archived.id}/members`, { token }));
    assert.equal(members.length, 1);
    for (const q of ["per_page=1", "since=1", `before=${world.newId()}`]) {
      const err = await json(
        await call(sim, `/channels/${archived.id}/posts?${q}`, { token }),
        403,
      );
      assert.equal(err.id, "api.user.view_archived_channels.get_posts_for_channel.app_error");
    }
    await json(await call(sim, `/channels/${channel.id}/posts`, { token }));
    const config = await json(await call(sim, "/config/client?format=old"));
    assert.equal(config.ExperimentalViewArchivedChannels, "false");
  }, { viewArchivedChannels: false });
  await withSim(world, async (sim) => {
    await json(await call(sim, `/channels/${archived.id}/posts`, { token }));
  });
});

Deno.test("DM and GM names follow the server's rules and appear in team channel lists", async () => {
  const { world, alice, bob, carol, team, token } = smallWorld();
  const dm = world.addDirectChannel(bob.id, alice.id);
  const self = world.addDirectChannel(alice.id, alice.id);
  const gm = world.addGroupChannel([carol.id, alice.id, bob.id]);
  const sorted = [alice.id, bob.id, carol.id].sort();
  assert.equal(dm.name, [alice.id, bob.id].sort().join("__"));
  assert.equal(self.name, `${alice.id}__${alice.id}`);
  assert.equal(gm.name, createHash("sha1").update(sorted.join("")).digest("hex"));
  assert.equal(gm.display_name, "alice, bob, carol");
  assert.equal(world.channelMembers(self.id).length, 1);
  await withSim(world, async (sim) => {
    const res = await call(sim, `/users/me/teams/${team.id}/channels`, { token });
    const list = await json(res);
    assert.equal(list.length, 4);
    assert.ok(
      list.some((c: { id: string; team_id: string }) => c.id === gm.id && c.team_id === ""),
    );
    const etag = res.headers.get("ETag") ?? "";
    const again = await call(sim, `/users/me/teams/${team.id}/channels`, {
      token,
      headers: { "If-None-Match": etag },
    });
    assert.equal(again.status, 304);
    await again.body?.cancel();
  });
});

Deno.test("custom emoji answer 501 when disabled and page with a 200 cap otherwise", async () => {
  const { world, alice, token } = smallWorld();
  for (let i = 0; i < 205; i++) {
    world.addEmoji({ name: `e${i}`, creatorId: alice.id, image: new Uint8Array([1, 2, 3]) });
  }
  world.deleteEmoji([...world.emojis.keys()][0] ?? "");
  await withSim(world, async (sim) => {
    assert.equal((await json(await call(sim, "/emoji?per_page=1000", { token }))).length, 200);
    assert.equal((await json(await call(sim, "/emoji?page=1&per_page=200", { token }))).length, 4);
    await json(await call(sim, "/emoji/name/e0", { token }), 404);
    const img = await call(sim, `/emoji/${[...world.emojis.keys()][1]}/image`, { token });
    assert.deepEqual(new Uint8Array(await img.arrayBuffer()), new Uint8Array([1, 2, 3]));
  });
  await withSim(world, async (sim) => {
    const res = await json(await call(sim, "/emoji", { token }), 501);
    assert.equal(res.id, "api.emoji.disabled.app_error");
  }, { emojiEnabled: false });
});

Deno.test("custom emoji pages have no order without sort=name, and name order with it", async () => {
  const { world, alice, token } = smallWorld();
  for (let i = 0; i < 450; i++) {
    world.addEmoji({ name: `e${i}`, creatorId: alice.id, image: new Uint8Array([1]) });
  }
  await withSim(world, async (sim) => {
    const pages = async (sort: string) => {
      const names: string[] = [];
      for (let page = 0; page < 3; page++) {
        const q = `page=${page}&per_page=200${sort}`;
        names.push(...(await json(await call(sim, `/emoji?${q}`, { token }))).map(
          (e: { name: string }) => e.name,
        ));
      }
      return names;
    };
    const unsorted = await pages("");
    assert.equal(unsorted.length, 450);
    assert.ok(new Set(unsorted).size < 450, "pages overlap, so others are skipped");
    const sorted = await pages("&sort=name");
    assert.deepEqual(sorted, [...world.emojis.values()].map((e) => e.name).sort());
  });
});

Deno.test("the rate limiter answers a plain-text 429 with Retry-After", async () => {
  const { world, token } = smallWorld();
  await withSim(world, async (sim) => {
    const first = await call(sim, "/users/me", { token });
    await json(first);
    assert.equal(first.headers.get("X-RateLimit-Limit"), "2");
    assert.equal(first.headers.get("X-RateLimit-Remaining"), "1");
    await json(await call(sim, "/users/me", { token }));
    const limited = await call(sim, "/users/me", { token });
    assert.equal(limited.status, 429);
    assert.equal(await limited.text(), "limit exceeded\n");
    assert.equal(limited.headers.get("Retry-After"), "5");
    assert.equal(limited.headers.get("X-RateLimit-Remaining"), "0");
    assert.match(limited.headers.get("Content-Type") ?? "", /^text\/plain/);
  }, { rateLimit: { perSec: 0.2, maxBurst: 1 } });
});

Deno.test("injected faults: status, cut body, invalid JSON and stalls", async () => {
  const { world, token } = smallWorld();
  await withSim(world, async (sim) => {
    const flaky = await call(sim, "/users/me?f=status", { token });
    assert.equal(flaky.status, 502);
    assert.equal(await flaky.text(), "<html>bad gateway</html>");
    await json(await call(sim, "/users/me?f=status", { token }));

    const cut = await call(sim, "/users/me?f=cut", { token });
    assert.equal(cut.status, 200);
    await assert.rejects(cut.arrayBuffer());

    const broken = await call(sim, "/users/me?f=json", { token });
    assert.equal(broken.status, 200);
    await assert.rejects(broken.json(), SyntaxError);

    const started = performance.now();
    await json(await call(sim, "/users/me?f=stall", { token }));
    assert.ok(performance.now() - started >= 50);
    assert.ok(sim.requests.every((r) => r.status > 0));
  }, {
    faults: ({ query, attempt }) => {
      if (query === "f=status" && attempt === 1) {
        return { kind: "status", status: 502, body: "<html>bad gateway</html>" };
      }
      if (query === "f=cut") return { kind: "cutBody" };
      if (query === "f=json") return { kind: "invalidJson" };
      if (query === "f=stall") return { kind: "stall", ms: 50 };
      return undefined;
    },
  });
});

Deno.test("a stalled request does not keep close() waiting", async () => {
  const { world, token } = smallWorld();
  const sim = await startSimulator({ world, faults: () => ({ kind: "stall", ms: 60_000 }) });
  const pending = call(sim, "/users/me", { token });
  while (sim.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
  await sim.close();
  await (await pending).body?.cancel();
});

Deno.test("files: active content is served as text/plain, ranges work, deleted posts hide files", async () => {
  const { world, alice, channel, token } = smallWorld();
  const bytes = new TextEncoder().encode("<script>alert(1)</script>");
  const f = world.addFile({ userId: alice.id, channelId: channel.id, name: "x.html", bytes });
  const post = world.addPost({ channelId: channel.id, userId: alice.id, fileIds: [f.id] });
  assert.equal(post.metadata.files?.[0]?.post_id, post.id);
  assert.deepEqual(post.file_ids, [f.id]);
  await withSim(world, async (sim) => {
    const full = await call(sim, `/files/${f.id}`, { token });
    assert.equal(full.headers.get("Content-Type"), "text/plain");
    assert.equal(full.headers.get("Content-Length"), String(bytes.length));
    assert.deepEqual(new Uint8Array(await full.arrayBuffer()), bytes);
    const part = await call(sim, `/files/${f.id}`, { token, headers: { Range: "bytes=8-" } });
    assert.equal(part.status, 206);
    assert.equal(await part.text(), "alert(1)</script>");
    await json(await call(sim, `/files/${f.id}/thumbnail`, { token }), 400);
    world.deletePost(post.id);
    await json(await call(sim, `/files/${f.id}`, { token }), 404);
    await json(await call(sim, `/files/${f.id}/info`, { token }), 404);
  });
});

Deno.test("avatars and team icons use their update time as ETag", async () => {
  const { world, alice, bob, team, token } = smallWorld();
  world.setUserPicture(bob.id, new Uint8Array([9, 9]));
  await withSim(world, async (sim) => {
    const pic = await call(sim, `/users/${bob.id}/image`, { token });
    assert.equal(pic.headers.get("Content-Type"), "image/png");
    assert.deepEqual(new Uint8Array(await pic.arrayBuffer()), new Uint8Array([9, 9]));
    const etag = String(world.user(bob.id).last_picture_update);
    assert.equal(pic.headers.get("ETag"), etag);
    const cached = await call(sim, `/users/${bob.id}/image`, {
      token,
      headers: { "If-None-Match": etag },
    });
    assert.equal(cached.status, 304);
    await cached.body?.cancel();
    const generated = await call(sim, `/users/${alice.id}/image`, { token });
    assert.deepEqual([...new Uint8Array(await generated.arrayBuffer()).slice(1, 4)], [80, 78, 71]);
    await json(await call(sim, `/teams/${team.id}/image`, { token }), 404);
  });
});

Deno.test("POST /users/ids honours since and the payload limit", async () => {
  const { world, alice, bob, token } = smallWorld();
  const since = world.now();
  world.renameUser(bob.id, "robert");
  await withSim(world, async (sim) => {
    const all = await json(await call(sim, "/users/ids", { token, body: [alice.id, bob.id] }));
    assert.equal(all.length, 2);
    const changed = await json(
      await call(sim, `/users/ids?since=${since}`, { token, body: [alice.id, bob.id] }),
    );
    assert.deepEqual(changed.map((u: { username: string }) => u.username), ["robert"]);
    const tooMany = [alice.id, bob.id, world.newId()];
    await json(await call(sim, "/users/ids", { token, body: tooMany }), 413);
  }, { maxUsersIdsPayload: 2 });
});

Deno.test("edit_history gives the author every earlier version with its text, newest edit first; others get 403", async () => {
  const { world, alice, bob, channel, token } = smallWorld();
  const mine = world.addPost({ channelId: channel.id, userId: alice.id, message: "v0" });
  world.editPost(mine.id, "v1");
  world.pinPost(mine.id, true);
  world.editPost(mine.id, "v2");
  const reply = world.addPost({
    channelId: channel.id,
    userId: alice.id,
    rootId: mine.id,
    message: "r0",
  });
  world.editPost(reply.id, "r1");
  const plain = world.addPost({ channelId: channel.id, userId: alice.id, message: "never edited" });
  const theirs = world.addPost({ channelId: channel.id, userId: bob.id, message: "b0" });
  world.editPost(theirs.id, "b1");
  const gone = world.addPost({ channelId: channel.id, userId: alice.id, message: "g0" });
  world.editPost(gone.id, "g1");
  world.deletePost(gone.id);
  await withSim(world, async (sim) => {
    const history = await json(await call(sim, `/posts/${mine.id}/edit_history`, { token }));
    // Three copies: of v0 (the edit to v1), of v1 (the pin, edit_at unchanged), of v1 again
    // (the edit to v2).
    assert.deepEqual(history.map((p: { message: string }) => p.message), ["v1", "v1", "v0"]);
    const edits = history.map((p: { edit_at: number }) => p.edit_at);
    assert.deepEqual(edits, [...edits].sort((a: number, b: number) => b - a));
    for (const copy of history) {
      assert.equal(copy.original_id, mine.id);
      assert.ok(copy.delete_at > 0);
      assert.notEqual(copy.id, mine.id);
    }
    const replyHistory = await json(await call(sim, `/posts/${reply.id}/edit_history`, { token }));
    assert.deepEqual(replyHistory.map((p: { message: string }) => p.message), ["r0"]);
    assert.equal(replyHistory[0].root_id, mine.id);

    const errorId = async (id: string, status: number) =>
      (await json(await call(sim, `/posts/${id}/edit_history`, { token }), status)).id;
    assert.equal(await errorId(plain.id, 404), "app.post.get.app_error");
    assert.equal(await errorId(theirs.id, 403), "api.context.permissions.app_error");
    assert.equal(await errorId(gone.id, 403), "api.context.permissions.app_error");
    assert.equal(await errorId(history[0].id, 403), "api.context.permissions.app_error");
  });
  // A server before 7.9 has no such route.
  await withSim(world, async (sim) => {
    const res = await call(sim, `/posts/${mine.id}/edit_history`, { token });
    assert.equal((await json(res, 404)).id, "api.context.404.app_error");
  }, { editHistory: false });
});

Deno.test("a pin keeps a history copy like an edit, with edit_at unchanged, and touches nothing else", () => {
  const { world, alice, channel } = smallWorld();
  const root = world.addPost({ channelId: channel.id, userId: alice.id, message: "root" });
  const reply = world.addPost({ channelId: channel.id, userId: alice.id, rootId: root.id });
  const rootUpdate = world.post(root.id)?.update_at as number;
  world.advance(10);
  world.pinPost(reply.id, true);
  const copies = world.channelEditHistory(channel.id);
  assert.equal(copies.length, 1);
  assert.equal(copies[0]?.original_id, reply.id);
  assert.equal(copies[0]?.edit_at, 0);
  assert.equal(copies[0]?.is_pinned, false);
  assert.equal(world.post(reply.id)?.edit_at, 0);
  // post_store.go Update touches a reply's root.
  assert.ok((world.post(root.id)?.update_at as number) > rootUpdate);
});

Deno.test("generateWorld is deterministic and includes the hostile cases", () => {
  const a = generateWorld({ seed: 7, hostileNames: true });
  const b = generateWorld({ seed: 7, hostileNames: true });
  assert.deepEqual([...a.world.posts.keys()], [...b.world.posts.keys()]);
  assert.equal(a.token, b.token);
  const names = new Set([...a.world.files.values()].map((f) => f.name));
  for (const n of HOSTILE_FILE_NAMES) assert.ok(names.has(n), n);
  const channels = [...a.world.channels.values()];
  for (const type of ["O", "P", "D", "G"]) assert.ok(channels.some((c) => c.type === type));
  assert.ok(channels.some((c) => c.delete_at > 0));
  assert.ok(channels.some((c) => c.name === `${a.me.id}__${a.me.id}`));
  const posts = [...a.world.posts.values()];
  assert.ok(posts.some((p) => p.original_id !== ""));
  assert.ok(posts.some((p) => p.root_id !== "" && p.delete_at > 0));
  assert.ok(posts.some((p) => p.reactions?.length));
});
