// Deterministic sample worlds for the demo, benchmarks and end-to-end tests.

import { makePng } from "./png.ts";
import { type Channel, type PostRecord, type User, World } from "./world.ts";

export interface GenerateOptions {
  seed?: number;
  teams?: number;
  channelsPerTeam?: number;
  postsPerChannel?: number;
  /** Share of posts that are replies to an earlier root. */
  replyRatio?: number;
  /** Every n-th post carries an attachment; 0 = none. */
  filesEvery?: number;
  /** Direct channels of "me"; the first one is the self-DM. */
  dms?: number;
  gms?: number;
  users?: number;
  /** Attachments (and a display name) that break naive file-system mapping. */
  hostileNames?: boolean;
  /**
   * SHOWCASE_MESSAGES at the end of team-0's town square (with a thread, an edit, a pin, a
   * reaction, a system message and a picture): what the viewer must render, hostile input too.
   */
  showcase?: boolean;
}

/** Messages an archive viewer must show as Mattermost does, or as plain text when hostile. */
export const SHOWCASE_MESSAGES: readonly string[] = [
  "**Release 2.0** is _out_: ~~beta~~ done. Thanks @bob and @carol, see ~public-0-2 #release :tada: :shipit:",
  "| service | status |\n|---|---|\n| api | :white_check_mark: up |\n| web | `degraded` |",
  "```ts\nconst answer: number = 42; // <b>not bold</b>\n```\n> quoted: _Mattermost_ renders this\n\n- one\n- two\n\n1. first\n2. second",
  "Links: https://example.org/docs and [the handbook](https://example.org/handbook) and mail [ops](mailto:ops@example.org)",
  "<img src=x onerror=alert(1)> <script>alert(2)</script> [x](javascript:alert(3))",
  '"><svg onload=alert(4)> <a href="javascript:alert(5)">a</a> ![p](x" onerror="alert(6)) [y](JaVaScRiPt:alert(7)) <iframe src=javascript:alert(8)>',
  "```\n</code></pre><script>alert(9)</script>\n```\n<style>body{display:none}</style> [z](data:text/html,<script>alert(10)</script>)",
  "A very long line without spaces: " + "abcdefghij".repeat(60),
];

export interface GeneratedWorld {
  world: World;
  /** The account the backup runs as: member of every listed conversation. */
  me: User;
  password: string;
  /** A personal access token of `me`. */
  token: string;
}

/** File names a backup must store without escaping its directory or colliding. */
export const HOSTILE_FILE_NAMES: readonly string[] = [
  "../../etc/passwd",
  "/absolute/path.txt",
  "CON",
  "nul.txt",
  "a\\b",
  "C:\\x",
  "nul\u0000byte.txt",
  "tab\tand\nnewline\u0007.txt",
  "x".repeat(296) + ".txt",
  "trailing dot.",
  "trailing space ",
  "..",
  "Report.txt",
  "report.txt",
  "report.txt",
  "caf\u00e9.txt",
  "cafe\u0301.txt",
  'quote"star*pipe|<angle>?.txt',
  "emoji 😀.png",
];

const NAMES = [
  "bob",
  "carol",
  "dave",
  "erin",
  "frank",
  "grace",
  "heidi",
  "ivan",
  "judy",
  "mallory",
  "niaj",
  "olivia",
  "peggy",
  "rupert",
  "sybil",
  "trent",
  "victor",
  "walter",
];
const WORDS = ["deploy", "review", "lunch", "incident", "release", "standup", "bug", "docs"];
const FILE_KINDS: ReadonlyArray<readonly [string, string]> = [
  ["report.pdf", "application/pdf"],
  ["photo.png", "image/png"],
  ["notes.txt", "text/plain"],
  ["page.html", "text/html"],
  ["script.js", "application/javascript"],
];
const BUILTIN_REACTIONS = ["+1", "smile", "tada", "eyes"];

export function generateWorld(opts: GenerateOptions = {}): GeneratedWorld {
  const world = new World({ seed: opts.seed ?? 42 });
  const rand = () => world.random();
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const color = (): [number, number, number] => [
    Math.floor(rand() * 256),
    Math.floor(rand() * 256),
    Math.floor(rand() * 256),
  ];
  const teamCount = opts.teams ?? 2;
  const channelsPerTeam = opts.channelsPerTeam ?? 4;
  const postsPerChannel = opts.postsPerChannel ?? 40;
  const replyRatio = opts.replyRatio ?? 0.25;
  const filesEvery = opts.filesEvery ?? 10;
  const userCount = Math.max(4, opts.users ?? 10);

  const password = "correct horse battery staple";
  const me = world.addUser({
    username: "alice",
    first_name: "Alice",
    last_name: "Backup",
    password,
    picture: makePng(8, 8, color()),
  });
  const token = world.addPersonalAccessToken(me.id);
  const others: User[] = [];
  for (let i = 0; i < userCount - 1; i++) {
    const base = NAMES[i % NAMES.length] ?? "user";
    others.push(world.addUser({
      username: i < NAMES.length ? base : `${base}${i}`,
      first_name: base[0]?.toUpperCase() + base.slice(1),
      password: `${base}-password`,
      ...(i % 2 === 0 ? { picture: makePng(8, 8, color()) } : {}),
    }));
  }
  const bot = world.addUser({ username: "build-bot", is_bot: true });
  const active = [me, ...others, bot];
  // A deactivated author keeps their posts; the backup must still resolve them.
  const leaver = others[others.length - 1];

  const emojiNames = ["party_parrot", "shipit", "blobcat"];
  for (const name of emojiNames) {
    world.addEmoji({ name, creatorId: pick(active).id, image: makePng(4, 4, color()) });
  }
  world.deleteEmoji(
    world.addEmoji({ name: "retired", creatorId: me.id, image: makePng(4, 4, color()) }).id,
  );
  const reactionNames = [...BUILTIN_REACTIONS, ...emojiNames];

  const conversations: { channel: Channel; members: User[]; posts: number }[] = [];
  const toArchive: Channel[] = [];
  for (let t = 0; t < teamCount; t++) {
    const team = world.addTeam({
      name: `team-${t}`,
      display_name: `Team ${t}`,
      type: t % 2 ? "I" : "O",
      ...(t % 2 === 0 ? { icon: makePng(16, 16, color()) } : {}),
    });
    for (const u of active) {
      world.addTeamMember(team.id, u.id, u === me ? "team_user team_admin" : undefined);
    }
    for (let c = 0; c < channelsPerTeam; c++) {
      const type = c % 3 === 1 ? "P" : "O";
      const hostile = opts.hostileNames && t === 0 && c === 1;
      const channel = world.addChannel({
        teamId: team.id,
        name: c === 0 ? "town-square" : `${type === "P" ? "private" : "public"}-${t}-${c}`,
        display_name: hostile
          ? "Ops/Night: <Shift>?"
          : c === 0
          ? "Town Square"
          : `Channel ${t}.${c}`,
        type,
        purpose: `Channel ${c} of team ${t}`,
        creatorId: me.id,
      });
      const members = [me, ...others.filter(() => c === 0 || rand() < 0.5)];
      for (const u of members) world.addChannelMember(channel.id, u.id);
      conversations.push({ channel, members, posts: postsPerChannel });
      if (channelsPerTeam >= 3 && c === channelsPerTeam - 1) toArchive.push(channel);
    }
    // Readable but not listed for "me" (unjoined public), and unreachable (private, not a member).
    for (const type of ["O", "P"] as const) {
      const channel = world.addChannel({
        teamId: team.id,
        name: type === "O" ? `unjoined-${t}` : `secret-${t}`,
        type,
      });
      const members = others.slice(0, 3);
      for (const u of members) world.addChannelMember(channel.id, u.id);
      conversations.push({ channel, members, posts: Math.min(postsPerChannel, 3) });
    }
  }
  for (let d = 0; d < (opts.dms ?? 3); d++) {
    const partner = d === 0 ? me : others[(d - 1) % others.length] ?? me;
    const channel = world.addDirectChannel(me.id, partner.id);
    conversations.push({
      channel,
      members: d === 0 ? [me] : [me, partner],
      posts: postsPerChannel,
    });
  }
  for (let g = 0; g < (opts.gms ?? 2); g++) {
    const members = [me, ...others.filter((_, i) => (i + g) % 3 === 0).slice(0, 2 + (g % 3))];
    if (members.length < 3) continue;
    const channel = world.addGroupChannel(members.map((u) => u.id));
    conversations.push({ channel, members, posts: postsPerChannel });
  }

  let hostileLeft = opts.hostileNames ? [...HOSTILE_FILE_NAMES] : [];
  for (const conv of conversations) {
    const created: PostRecord[] = [];
    const roots: string[] = [];
    let previous = 0;
    for (let i = 0; i < conv.posts; i++) {
      const author = pick(conv.members);
      world.advance(1 + Math.floor(rand() * 90_000));
      const fileIds: string[] = [];
      const hostileName = conv.channel.type !== "D" && hostileLeft.length
        ? hostileLeft[0]
        : undefined;
      if (hostileName !== undefined) {
        hostileLeft = hostileLeft.slice(1);
        fileIds.push(
          world.addFile({
            userId: author.id,
            channelId: conv.channel.id,
            name: hostileName,
            bytes: new TextEncoder().encode(`hostile file ${hostileName}\n`),
            mimeType: "text/plain",
          }).id,
        );
      } else if (filesEvery > 0 && i % filesEvery === filesEvery - 1) {
        const [name, mimeType] = pick(FILE_KINDS);
        const bytes = mimeType === "image/png"
          ? makePng(2 + (i % 30), 2 + (i % 20), color())
          : new TextEncoder().encode(`${name} #${i} in ${conv.channel.name}\n`.repeat(1 + (i % 5)));
        fileIds.push(
          world.addFile({ userId: author.id, channelId: conv.channel.id, name, bytes, mimeType })
            .id,
        );
      }
      const rootId = roots.length && rand() < replyRatio ? pick(roots) : undefined;
      let message = `${pick(WORDS)} ${i}`;
      if (i % 17 === 0) message += " #release";
      if (i % 23 === 0) message += ` :${pick(emojiNames)}:`;
      const post = world.addPostRecord({
        channelId: conv.channel.id,
        userId: author.id,
        message,
        ...(rootId ? { rootId } : {}),
        ...(fileIds.length ? { fileIds } : {}),
        // Every 97th post shares its predecessor's millisecond to exercise strict before/after.
        ...(i % 97 === 96 ? { createAt: previous } : {}),
      });
      previous = post.create_at;
      created.push(post);
      if (!rootId) {
        roots.push(post.id);
        if (roots.length > 20) roots.shift();
      }
    }
    for (const post of created) {
      if (post.delete_at) continue;
      const r = rand();
      if (r < 0.05) world.addReaction(post.id, pick(conv.members).id, pick(reactionNames));
      else if (r < 0.06) world.pinPost(post.id, true);
      else if (r < 0.09) world.editPost(post.id, `${post.message} (edited)`);
      else if (r < 0.11) world.deletePost(post.id, post.user_id);
    }
  }
  if (opts.showcase) addShowcase(world, me, others);
  if (leaver) world.deactivateUser(leaver.id);
  for (const channel of toArchive) world.archiveChannel(channel.id);
  return { world, me, password, token };
}

function addShowcase(world: World, me: User, others: User[]): void {
  const team = [...world.teams.values()].find((t) => t.name === "team-0");
  const channel = [...world.channels.values()].find((c) =>
    c.team_id === team?.id && c.name === "town-square"
  );
  if (!channel) throw new Error("the showcase needs team-0's town square");
  const [bob, carol] = others as [User, User];
  const posts = SHOWCASE_MESSAGES.map((message, i) => {
    world.advance(60_000);
    return world.addPost({ channelId: channel.id, userId: [me, bob, carol][i % 3]!.id, message });
  });
  world.advance(60_000);
  world.addPost({
    channelId: channel.id,
    userId: carol.id,
    message: "carol joined the channel.",
    type: "system_join_channel",
    props: { username: carol.username },
  });
  world.advance(60_000);
  const picture = world.addFile({
    userId: bob.id,
    channelId: channel.id,
    name: "whiteboard.png",
    bytes: makePng(320, 180, [70, 130, 180]),
    mimeType: "image/png",
  });
  const root = world.addPost({
    channelId: channel.id,
    userId: bob.id,
    message: "Whiteboard from today's planning, thoughts?",
    fileIds: [picture.id],
  });
  world.advance(60_000);
  world.addPost({
    channelId: channel.id,
    userId: me.id,
    rootId: root.id,
    message: "Looks good :+1: let's ship it",
  });
  world.addReaction(root.id, me.id, "+1");
  world.addReaction(root.id, carol.id, "+1");
  world.addReaction(root.id, carol.id, "shipit");
  world.pinPost(root.id, true);
  world.editPost((posts[0] as { id: string }).id, `${SHOWCASE_MESSAGES[0]} (now with notes)`);
}
