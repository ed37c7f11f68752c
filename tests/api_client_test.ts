/** The HTTP client against the simulator's injected faults: what is retried, how, and what not. */
import assert from "node:assert/strict";
import { ApiClient, apiRootFromUrl, readBytes } from "../lib/api/client.ts";
import { ApiError, ServerError } from "../lib/util/errors.ts";
import { MattermostApi } from "../lib/api/mattermost.ts";
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

Deno.test("a redirect to another host never carries the token", async () => {
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
    await withClient({ faults }, {}, async (api) => {
      const bytes = await api.downloadFile("abcdefghijklmnopqrstuvwxyz", "x", async (body) => {
        const chunks = await readBytes({ status: 200, headers: new Headers(), body });
        return new TextDecoder().decode(chunks);
      });
      assert.equal(bytes, "elsewhere");
    });
    assert.deepEqual(seen, [null]);
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
