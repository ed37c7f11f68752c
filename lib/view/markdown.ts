/**
 * Mattermost's Markdown flavour as safe HTML: CommonMark with tables, strike-through, fenced
 * code, hard line breaks and bare links (markdown-it with raw HTML off), plus @mentions,
 * ~channel links, :emoji: and #hashtags. Message text is untrusted: raw HTML comes out as text,
 * links keep only http, https, mailto and relative targets, and images from elsewhere become
 * links (the site never loads anything from the network).
 */
import MarkdownIt, { type StateInline, type Token } from "markdown-it";
import { esc } from "./html.ts";

/** What a message can refer to; undefined means "not in the backup": shown as text. */
export interface MarkdownContext {
  /** A user by username (lower case): where they are described, and their full name. */
  user(username: string): { href: string; title: string } | undefined;
  /** A backed-up channel by name (lower case). */
  channel(name: string): { href: string; title: string } | undefined;
  /** An emoji by name: its Unicode text (standard) or the URL of its image (custom). */
  emoji(name: string): { text: string } | { src: string } | undefined;
  /** Where a hashtag leads (the search). */
  hashtag(tag: string): string;
}

/** http, https, mailto and relative targets; no other scheme, no protocol-relative URL. */
export function isAllowedLink(url: string): boolean {
  const trimmed = url.trim();
  if (/^(https?:|mailto:)/i.test(trimmed)) return true;
  return !/^[a-z][a-z0-9+.-]*:/i.test(trimmed) && !/^[\\/]{2}/.test(trimmed);
}

/** Mattermost usernames: letters, digits, `.`, `_`, `-` (model.IsValidUsername). */
const MENTION = /^@([a-z0-9][a-z0-9._-]*)/i;
const CHANNEL_LINK = /^~([a-z0-9][a-z0-9_-]*)/i;
const EMOJI = /^:([a-z0-9_+-]+):/i;
/** Mattermost's hashtags start with a letter and hold at least three characters. */
const HASHTAG = /^#(\p{L}[\p{L}\p{N}_.-]+[\p{L}\p{N}])/u;
const SPECIAL_MENTIONS = new Set(["all", "channel", "here"]);
const WORD_CHAR = /[\p{L}\p{N}_]/u;

function afterWordChar(state: StateInline): boolean {
  return state.pos > 0 && WORD_CHAR.test(state.src[state.pos - 1] as string);
}

function ctx(env: unknown): MarkdownContext {
  return env as MarkdownContext;
}

/** An inline rule for `marker` that turns a match of `pattern` into a token of `type`. */
function rule(
  marker: string,
  pattern: RegExp,
  type: string,
  accept: (match: RegExpExecArray, state: StateInline) => boolean = () => true,
) {
  return (state: StateInline, silent: boolean): boolean => {
    if (state.src[state.pos] !== marker || afterWordChar(state)) return false;
    const match = pattern.exec(state.src.slice(state.pos, state.posMax));
    if (!match || !accept(match, state)) return false;
    if (!silent) {
      const token = state.push(type, "", 0);
      token.content = match[1] as string;
      token.markup = match[0];
    }
    state.pos += match[0].length;
    return true;
  };
}

function trimmedMention(name: string): string {
  // A sentence may end right after a mention: "ask @bob." mentions bob.
  return name.replace(/[._-]+$/, "");
}

export function createRenderer(): (message: string, context: MarkdownContext) => string {
  const md = new MarkdownIt({ html: false, linkify: true, breaks: true, typographer: false });
  md.validateLink = isAllowedLink;
  // Mentions are ours: linkify would otherwise take `@bob.example` for an e-mail address.
  md.linkify.set({ fuzzyEmail: false });

  md.inline.ruler.before("emphasis", "mm_mention", rule("@", MENTION, "mm_mention"));
  md.inline.ruler.before(
    "strikethrough",
    "mm_channel",
    rule("~", CHANNEL_LINK, "mm_channel", (m, s) => s.src[s.pos + 1] !== "~" && m[1] !== ""),
  );
  md.inline.ruler.before(
    "emphasis",
    "mm_emoji",
    rule(
      ":",
      EMOJI,
      "mm_emoji",
      (m, s) => ctx(s.env).emoji((m[1] as string).toLowerCase()) !== undefined,
    ),
  );
  md.inline.ruler.before("emphasis", "mm_hashtag", rule("#", HASHTAG, "mm_hashtag"));

  const rules = md.renderer.rules;
  rules.mm_mention = (tokens: Token[], idx: number, _o, env) => {
    const token = tokens[idx] as Token;
    const name = trimmedMention(token.content);
    const rest = esc(token.content.slice(name.length));
    const lower = name.toLowerCase();
    if (SPECIAL_MENTIONS.has(lower)) return `<span class="mention-all">@${esc(name)}</span>${rest}`;
    const user = ctx(env).user(lower);
    if (!user) return `<span class="mention">@${esc(name)}</span>${rest}`;
    return `<a class="mention" href="${esc(user.href)}" title="${esc(user.title)}">@${
      esc(name)
    }</a>${rest}`;
  };
  rules.mm_channel = (tokens: Token[], idx: number, _o, env) => {
    const token = tokens[idx] as Token;
    const channel = ctx(env).channel(token.content.toLowerCase());
    if (!channel) return esc(token.markup);
    return `<a class="channel-link" href="${esc(channel.href)}">~${esc(channel.title)}</a>`;
  };
  rules.mm_emoji = (tokens: Token[], idx: number, _o, env) => {
    const token = tokens[idx] as Token;
    const name = token.content.toLowerCase();
    const emoji = ctx(env).emoji(name);
    if (!emoji) return esc(token.markup);
    if ("text" in emoji) {
      return `<span class="emoji" title=":${esc(name)}:">${esc(emoji.text)}</span>`;
    }
    return `<img class="emoji" src="${esc(emoji.src)}" alt=":${esc(name)}:" title=":${
      esc(name)
    }:">`;
  };
  rules.mm_hashtag = (tokens: Token[], idx: number, _o, env) => {
    const token = tokens[idx] as Token;
    return `<a class="hashtag" href="${esc(ctx(env).hashtag(token.content))}">#${
      esc(token.content)
    }</a>`;
  };
  rules.link_open = (tokens: Token[], idx: number, options, _env, self) => {
    const token = tokens[idx] as Token;
    token.attrSet("rel", "noopener noreferrer nofollow");
    token.attrSet("target", "_blank");
    return self.renderToken(tokens, idx, options);
  };
  // An image from a server or the web would be a request leaving the archive: a link instead.
  rules.image = (tokens: Token[], idx: number) => {
    const token = tokens[idx] as Token;
    const src = token.attrGet("src") ?? "";
    const alt = token.children?.map((t: Token) => t.content).join("") || src;
    if (!src) return esc(alt);
    return `<a class="image-link" href="${
      esc(src)
    }" rel="noopener noreferrer nofollow" target="_blank">${esc(alt)}</a>`;
  };
  return (message, context) => md.render(message, context as unknown as Record<string, unknown>);
}
