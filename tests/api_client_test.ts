/** The HTTP client against the simulator's injected faults: what is retried, how, and what not. */
import assert from "node:assert/strict";
import {
  AnswerTooLargeError,
  ApiClient,
  apiRootFromUrl,
  type ClientEvent,
  JSON_MAX_BYTES,
  redirectVerdict,
} from "../lib/api/client.ts";
import { ApiError, ServerError, UnsafeRedirectError } from "../lib/util/errors.ts";
import { IMAGE_MAX_BYTES, MattermostApi } from "../lib/api/mattermost.ts";
import { MAX_BUDGET_GAP_MS, MAX_SERVER_WAIT_MS } from "../lib/api/retry.ts";
import { FakeClock } from "./fake_clock.ts";
import { generateWorld } from "./simulator/generate.ts";
import { type FaultPlan, type SimulatorOptions, startSimulator } from "./simulator/server.ts";

async function withClient(
  options: Omit<SimulatorOptions, "world">,
  clientOptions: Partial<ConstructorParameters<typeof ApiClient>[0]>,
  test: (
    api: MattermostApi,
    client: ApiClient,
    sim: Awaited<ReturnType<typeof startSimulator>>,
  ) => Promise<void>,
): Promise<void> {
  const { world, token } = generateWorld({
    teams: 1,
    channelsPerTeam: 1,
    postsPerChannel: 5,
    dms: 0,
    gms: 0,
  });
  const sim = await startSimulator({ world, ...options });
  try {
    const client = new ApiClient({
      serverUrl: `${sim.url}/api`,
      rateLimit: 0,
      concurrency: 4,
      timeoutMs: 2000,
      retry: { retries: 3, baseDelayMs: 1, maxDelayMs: 5 },
      credentials: { token },
      ...clientOptions,
    });
    await test(new MattermostApi(client), client, sim);
  } finally {
    await sim.close();
  }
}

const onFirstAttempt = (path: string, fault: ReturnType<FaultPlan>): FaultPlan => (req) =>
  req.path === `/api/v4${path}` && req.attempt === 1 ? fault : undefined;

Deno.test("the server URL is accepted with or without /api or /api/v4", () => {
  for (
    const url of [
      "https://mm.example.org",
      "https://mm.example.org/",
      "https://mm.example.org/api",
      "https://mm.example.org/api/v4/",
    ]
  ) {
    assert.equal(apiRootFromUrl(url), "https://mm.example.org");
  }
  assert.equal(apiRootFromUrl("https://example.org/chat/api"), "https://example.org/chat");
});

const transient: Array<[string, ReturnType<FaultPlan>]> = [
  ["500", { kind: "status", status: 500 }],
  ["502 with an HTML page", {
    kind: "status",
    status: 502,
    body: "<html><body>Bad Gateway</body></html>",
  }],
  ["503", { kind: "status", status: 503 }],
  ["504", { kind: "status", status: 504 }],
  ["408", { kind: "status", status: 408 }],
  ["429 in plain text", {
    kind: "status",
    status: 429,
    body: "limit exceeded",
    headers: { "Retry-After": "0" },
  }],
  ["a cut-off body", { kind: "cutBody" }],
  ["invalid JSON", { kind: "invalidJson" }],
  ["a stall longer than the timeout", { kind: "slowBody", chunkBytes: 10, delayMs: 3000 }],
];

for (const [name, fault] of transient) {
  Deno.test(`${name} is retried and the answer still arrives whole`, async () => {
    await withClient(
      { faults: onFirstAttempt("/users/me", fault) },
      { timeoutMs: 500 },
      async (api, client) => {
        const user = await api.me();
        assert.equal(user.username, "alice");
        assert.equal(client.stats.retries, 1);
      },
    );
  });
}

Deno.test("other 4xx fail at once with a message naming the object and the server's error id", async () => {
  await withClient({}, {}, async (api, client) => {
    await assert.rejects(
      api.postsPage("zzzzzzzzzzzzzzzzzzzzzzzzzz", "team-0/ghost", {}),
      (e: Error) =>
        e instanceof ApiError && e.status === 404 &&
        /posts of channel team-0\/ghost: HTTP 404/.test(e.message),
    );
    assert.equal(client.stats.retries, 0);
    assert.equal(client.stats.requests, 1);
  });
});

for (const status of [400, 401, 403, 404, 413]) {
  Deno.test(`a ${status} is not retried: exactly one request`, async () => {
    await withClient(
      { faults: () => ({ kind: "status", status }) },
      {},
      async (api, client, sim) => {
        await assert.rejects(api.me(), (e: Error) => e instanceof ApiError && e.status === status);
        assert.equal(sim.requests.length, 1);
        assert.equal(client.stats.retries, 0);
      },
    );
  });
}

Deno.test("retries are bounded: the last error is reported", async () => {
  await withClient({ faults: () => ({ kind: "status", status: 503 }) }, {}, async (api, client) => {
    await assert.rejects(api.me(), (e: Error) => e instanceof ApiError && e.status === 503);
    assert.equal(client.stats.requests, 4);
  });
});

Deno.test("a refused connection is a ServerError naming the server", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const client = new ApiClient({
    serverUrl: `http://127.0.0.1:${port}`,
    rateLimit: 0,
    concurrency: 1,
    timeoutMs: 1000,
    retry: { retries: 1, baseDelayMs: 1, maxDelayMs: 1 },
  });
  await assert.rejects(
    new MattermostApi(client).me(),
    (e: Error) =>
      e instanceof ServerError && e.message.includes(`Cannot reach http://127.0.0.1:${port}`),
  );
});

Deno.test("a 429 pauses every request, not only the refused one", async () => {
  const faults: FaultPlan = (req) => {
    if (req.attempt > 1) return undefined;
    if (req.path === "/api/v4/users/me") {
      return {
        kind: "status",
        status: 429,
        body: "limit exceeded",
        headers: { "Retry-After": "1" },
      };
    }
    // The others fail a little later, so their retries come while the pause is on.
    if (req.path.startsWith("/api/v4/teams/")) return { kind: "status", status: 500 };
    return undefined;
  };
  await withClient({ faults, latencyMs: 0 }, {}, async (api, _client, sim) => {
    const { world } = generateWorld({
      teams: 1,
      channelsPerTeam: 1,
      postsPerChannel: 1,
      dms: 0,
      gms: 0,
    });
    const teamId = [...world.teams.keys()][0] as string;
    const started = performance.now();
    const [, members] = await Promise.all([
      api.me(),
      new Promise((r) => setTimeout(r, 50)).then(() => api.teamMembers(teamId, "team-0")),
    ]);
    assert.ok(members.length > 0, "the retried request got its answer");
    const retried = sim.requests.filter((r) => r.startedAt > started + 60);
    assert.ok(retried.length >= 2);
    for (const request of retried) {
      assert.ok(request.startedAt - started >= 950, `${request.path} waited`);
    }
  });
});

Deno.test("the client slows down before the server's limit instead of running into 429s", async () => {
  await withClient(
    { rateLimit: { perSec: 20, maxBurst: 20 } },
    { concurrency: 4 },
    async (api, _client, sim) => {
      await Promise.all(Array.from({ length: 60 }, () => api.me()));
      const refused = sim.requests.filter((r) => r.status === 429).length;
      assert.ok(refused <= 2, `${refused} requests were refused`);
    },
  );
});

Deno.test("a redirect to another host is never followed: the token stays, the run stops", async () => {
  const seen: Array<string | null> = [];
  const other = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    seen.push(req.headers.get("authorization"));
    return new Response("elsewhere", { headers: { "Content-Type": "text/plain" } });
  });
  try {
    const target = `http://127.0.0.1:${other.addr.port}/file`;
    const faults: FaultPlan = (req) =>
      req.path.startsWith("/api/v4/files/")
        ? { kind: "status", status: 302, body: "", headers: { Location: target } }
        : undefined;
    await withClient({ faults }, {}, async (api, _client, sim) => {
      await assert.rejects(
        api.downloadFile("abcdefghijklmnopqrstuvwxyz", "x", (body) => new Response(body).text()),
        (e: Error) =>
          e instanceof UnsafeRedirectError &&
          e.message.includes(`to another server, http://127.0.0.1:${other.addr.port}`),
      );
      assert.equal(sim.requests.length, 1, "not retried");
    });
    assert.deepEqual(seen, []);
  } finally {
    await other.shutdown();
  }
});

Deno.test("a change query below since=1 is refused before it is sent (the server's newest page)", async () => {
  await withClient({}, {}, async (api, _client, sim) => {
    for (const since of [0, -5, Number.NaN]) {
      await assert.rejects(api.postsSince("c".repeat(26), "town-square", since), RangeError);
    }
    assert.equal(sim.requests.length, 0);
  });
});

Deno.test("the emoji list pages by name and holds each emoji once, even if one is added while paging", async () => {
  const { world, me, token } = generateWorld({ teams: 1, channelsPerTeam: 1, postsPerChannel: 1 });
  for (let i = 0; i < 450; i++) {
    world.addEmoji({ name: `e${i}`, creatorId: me.id, image: new Uint8Array([1]) });
  }
  let late: string | undefined;
  // Created between two page requests, it sorts first and shifts every later page by one.
  const faults: FaultPlan = (req) => {
    if (req.path === "/api/v4/emoji" && /(^|&)page=1(&|$)/.test(req.query) && !late) {
      late = world.addEmoji({ name: "a-late", creatorId: me.id, image: new Uint8Array([1]) }).id;
    }
    return undefined;
  };
  const sim = await startSimulator({ world, faults });
  try {
    const client = new ApiClient({
      serverUrl: sim.url,
      rateLimit: 0,
      concurrency: 1,
      timeoutMs: 2000,
      credentials: { token },
    });
    const emojis = (await new MattermostApi(client).emojis()) ?? [];
    assert.ok(sim.requests.every((r) => /(^|&)sort=name(&|$)/.test(r.query)));
    const ids = emojis.map((e) => e.id);
    assert.equal(ids.length, new Set(ids).size, "no emoji twice");
    const live = [...world.emojis.values()].filter((e) => e.delete_at === 0 && e.id !== late);
    assert.deepEqual(new Set(ids), new Set(live.map((e) => e.id)));
  } finally {
    await sim.close();
  }
});

// ---- a hostile server: redirects, echoes, floods, trickles, odd headers -------------------

Deno.test("redirects: only a GET to the server's own origin is followed, a few times", () => {
  const from = new URL("https://mm.example.org/api/v4/users/me");
  const origin = "https://mm.example.org";
  const verdict = (method: string, location: string, hops = 0) =>
    redirectVerdict(method, origin, location, from, hops).kind;
  assert.equal(verdict("GET", "/api/v4/users/me/"), "follow");
  assert.equal(verdict("GET", "https://mm.example.org/x"), "follow");
  assert.equal(verdict("GET", "/x", 2), "follow");
  assert.equal(verdict("GET", "/x", 3), "too-many");
  assert.equal(verdict("GET", "http://mm.example.org/x"), "origin", "another scheme");
  assert.equal(verdict("GET", "https://mm.example.org:8443/x"), "origin", "another port");
  assert.equal(verdict("GET", "https://evil.example.com/x"), "origin");
  assert.equal(verdict("POST", "/api/v4/users/login"), "method", "a login is never re-sent");
  assert.equal(verdict("POST", "https://evil.example.com/"), "origin");
  for (const other of ["file:///etc/passwd", "data:text/plain,x", "ftp://mm.example.org/x"]) {
    assert.equal(verdict("GET", other), "scheme", other);
  }
  assert.equal(verdict("GET", "http://[::1"), "invalid");
});

Deno.test("a login redirected, even to the same server, stops: the password is sent once", async () => {
  const { world, me, password } = generateWorld({ teams: 1, channelsPerTeam: 1, dms: 0, gms: 0 });
  const faults: FaultPlan = (req) =>
    req.path === "/api/v4/users/login"
      ? { kind: "status", status: 307, body: "", headers: { Location: "/api/v4/users/login2" } }
      : undefined;
  const sim = await startSimulator({ world, faults });
  try {
    const client = new ApiClient({
      serverUrl: sim.url,
      rateLimit: 0,
      concurrency: 1,
      timeoutMs: 2000,
      credentials: { loginId: me.username, password },
    });
    await assert.rejects(
      new MattermostApi(client).login(),
      (e: Error) =>
        e instanceof UnsafeRedirectError && /redirected login of alice \(a POST\)/.test(e.message),
    );
    assert.deepEqual(sim.requests.map((r) => r.path), ["/api/v4/users/login"]);
  } finally {
    await sim.close();
  }
});

Deno.test("a redirect to file: or data: is a failed item, never read", async () => {
  const victim = await Deno.makeTempFile();
  await Deno.writeTextFile(victim, "local secret content");
  try {
    for (const location of [`file://${victim}`, "data:image/png;base64,AAAA"]) {
      const faults: FaultPlan = (req) =>
        req.path.endsWith("/image")
          ? { kind: "status", status: 302, body: "", headers: { Location: location } }
          : undefined;
      await withClient({ faults }, {}, async (api, _client, sim) => {
        let written = false;
        await assert.rejects(
          api.userImage("abcdefghijklmnopqrstuvwxyz", "bob", () => {
            written = true;
            return Promise.resolve();
          }),
          (e: Error) =>
            e instanceof ServerError && !(e instanceof UnsafeRedirectError) &&
            /picture of user bob: .* redirected it to a (file|data): URL/.test(e.message),
        );
        assert.equal(written, false);
        assert.equal(sim.requests.length, 1, "not retried");
      });
    }
  } finally {
    await Deno.remove(victim);
  }
});

Deno.test("a same-origin redirect of a GET is followed with the token", async () => {
  const faults: FaultPlan = (req) =>
    req.path === "/api/v4/users/me" && req.query === ""
      ? { kind: "status", status: 301, body: "", headers: { Location: "/api/v4/users/me?moved=1" } }
      : undefined;
  await withClient({ faults }, {}, async (api, _client, sim) => {
    assert.equal((await api.me()).username, "alice");
    assert.equal(sim.requests.length, 2);
    assert.ok(sim.requests.every((r) => r.authorization?.startsWith("Bearer ")));
  });
});

Deno.test("an error page is scrubbed of a secret before it is cut short", async () => {
  const password = "Sup3r-Secret-Passw0rd-42";
  // The password starts a few characters before the 160 the message keeps of a page.
  const page = `<html><body>${"x".repeat(150)} ${password}</body></html>`;
  const faults: FaultPlan = () => ({ kind: "status", status: 502, body: page });
  await withClient(
    { faults },
    {
      credentials: { loginId: "alice", password },
      retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 },
    },
    async (api) => {
      await assert.rejects(api.login(), (e: Error) => {
        assert.ok(e.message.includes(`HTTP 502 ${"x".repeat(150)} [REDACTED`), e.message);
        assert.ok(!e.message.includes(password.slice(0, 5)), e.message);
        return true;
      });
    },
  );
});

Deno.test("a JSON answer far over the cap is refused as it streams, and not retried", async () => {
  const faults: FaultPlan = () => ({
    kind: "flood",
    contentType: "application/json",
    bytes: 64 << 20,
  });
  await withClient({ faults }, {}, async (api, client, sim) => {
    const started = performance.now();
    await assert.rejects(
      api.me(),
      (e: Error) =>
        e instanceof AnswerTooLargeError &&
        e.message === `Refused the current user (/users/me): larger than ${JSON_MAX_BYTES} bytes`,
    );
    assert.ok(performance.now() - started < 5000);
    assert.equal(sim.requests.length, 1);
    assert.ok(client.stats.bytes <= JSON_MAX_BYTES);
  });
});

Deno.test("an image without end is refused at its cap", async () => {
  const faults: FaultPlan = () => ({ kind: "flood", contentType: "image/png", bytes: 64 << 20 });
  await withClient({ faults }, {}, async (api) => {
    let received = 0;
    await assert.rejects(
      api.userImage("abcdefghijklmnopqrstuvwxyz", "bob", async (body) => {
        for await (const chunk of body) received += chunk.length;
      }),
      (e: Error) => e instanceof AnswerTooLargeError && /picture of user bob/.test(e.message),
    );
    assert.ok(received <= IMAGE_MAX_BYTES, `${received} bytes handed on`);
  });
});

Deno.test("a JSON answer that trickles in is cut off at the timeout, however steady", async () => {
  const faults: FaultPlan = () => ({ kind: "slowBody", chunkBytes: 1, delayMs: 20 });
  await withClient(
    { faults },
    { timeoutMs: 300, retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 } },
    async (api) => {
      const started = performance.now();
      await assert.rejects(
        api.me(),
        (e: Error) => e instanceof ServerError && /no complete answer within 0.3 s/.test(e.message),
      );
      assert.ok(performance.now() - started < 2000);
    },
  );
});

Deno.test("a download slower than the minimum pace over a timeout window is cut off", async () => {
  const { world, me, token } = generateWorld({ teams: 1, channelsPerTeam: 1, dms: 0, gms: 0 });
  const channel = [...world.channels.values()].find((c) => c.type === "O") as { id: string };
  const file = world.addFile({
    userId: me.id,
    channelId: channel.id,
    name: "big.bin",
    bytes: new Uint8Array(20_000),
  });
  // 2 kB/s: every byte keeps coming, but at a fifth of the minimum.
  const faults: FaultPlan = (req) =>
    req.path.startsWith("/api/v4/files/")
      ? { kind: "slowBody", chunkBytes: 100, delayMs: 50 }
      : undefined;
  const sim = await startSimulator({ world, faults });
  try {
    const client = new ApiClient({
      serverUrl: sim.url,
      rateLimit: 0,
      concurrency: 1,
      timeoutMs: 500,
      retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 },
      credentials: { token },
    });
    const started = performance.now();
    await assert.rejects(
      new MattermostApi(client).downloadFile(
        file.id,
        "big.bin",
        (body) => new Response(body).text(),
      ),
      (e: Error) => e instanceof ServerError && /slower than 10 kB\/s over 0.5 s/.test(e.message),
    );
    assert.ok(performance.now() - started < 2000);
  } finally {
    await sim.close();
  }
});

Deno.test("a server's wait is capped: Retry-After 20000000 waits 60 s and says so", async () => {
  const clock = new FakeClock();
  const events: ClientEvent[] = [];
  const faults = onFirstAttempt("/users/me", {
    kind: "status",
    status: 429,
    body: "limit exceeded",
    headers: { "Retry-After": "20000000" },
  });
  await withClient({ faults }, { clock, onEvent: (e) => events.push(e) }, async (api) => {
    assert.equal((await api.me()).username, "alice");
  });
  assert.deepEqual(clock.sleeps.filter((ms) => ms > 0), [MAX_SERVER_WAIT_MS]);
  const retry = events.find((e) => e.type === "retry");
  assert.match(
    retry?.type === "retry" ? retry.reason : "",
    /HTTP 429; the server asked for 20000000 s, at most 60 s is waited/,
  );
});

Deno.test("a server's budget spaces requests by at most a second, whatever its reset says", async () => {
  const clock = new FakeClock();
  const faults = onFirstAttempt("/users/me", {
    kind: "headers",
    headers: {
      "X-RateLimit-Limit": "100",
      "X-RateLimit-Remaining": "0",
      "X-RateLimit-Reset": "20000000",
    },
  });
  await withClient({ faults }, { clock }, async (api) => {
    await api.me();
    await api.me();
  });
  assert.ok(clock.sleeps.length > 0, "the second request was spaced");
  assert.ok(Math.max(...clock.sleeps) <= MAX_BUDGET_GAP_MS, `slept ${clock.sleeps}`);
});
