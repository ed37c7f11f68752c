import assert from "node:assert/strict";
import { createRenderer, isAllowedLink, type MarkdownContext } from "../lib/view/markdown.ts";
import { standardEmoji } from "../lib/view/emoji.ts";

const render = createRenderer();
const context: MarkdownContext = {
  user: (name) => name === "bob" ? { href: "u.html#u-b", title: "Bob Builder" } : undefined,
  channel: (name) =>
    name === "town-square" ? { href: "c/t/index.html", title: "Town Square" } : undefined,
  emoji: (name) => {
    if (name === "shipit") return { src: "emoji/s.png" };
    const text = standardEmoji(name);
    return text ? { text } : undefined;
  },
  hashtag: (tag) => `index.html?q=%23${tag}`,
};
const html = (message: string) => render(message, context).trim();
const LINK = 'rel="noopener noreferrer nofollow" target="_blank"';

Deno.test("Mattermost's Markdown renders as Mattermost shows it", () => {
  const cases: Array<[string, string]> = [
    [
      "**bold** _it_ ~~gone~~ `code`",
      "<p><strong>bold</strong> <em>it</em> <s>gone</s> <code>code</code></p>",
    ],
    ["line one\nline two", "<p>line one<br>\nline two</p>"],
    [
      "hi @bob, @nobody and @channel; ask @bob.",
      '<p>hi <a class="mention" href="u.html#u-b" title="Bob Builder">@bob</a>, <span class="mention">@nobody</span> and <span class="mention-all">@channel</span>; ask <a class="mention" href="u.html#u-b" title="Bob Builder">@bob</a>.</p>',
    ],
    ["mail bob@example.org", "<p>mail bob@example.org</p>"],
    [
      "see ~town-square, ~elsewhere and ~~struck~~",
      '<p>see <a class="channel-link" href="c/t/index.html">~Town Square</a>, ~elsewhere and <s>struck</s></p>',
    ],
    [
      ":+1: :tada: :shipit: :no_such_emoji:",
      '<p><span class="emoji" title=":+1:">👍</span> <span class="emoji" title=":tada:">🎉</span> <img class="emoji" src="emoji/s.png" alt=":shipit:" title=":shipit:"> :no_such_emoji:</p>',
    ],
    // A lone symbol gets the emoji presentation selector.
    [":heart:", '<p><span class="emoji" title=":heart:">❤️</span></p>'],
    [
      "#release #ab x#not 4#no",
      '<p><a class="hashtag" href="index.html?q=%23release">#release</a> #ab x#not 4#no</p>',
    ],
    ["# Heading", "<h1>Heading</h1>"],
    [
      "| a | b |\n|---|:-:|\n| 1 | 2 |",
      '<table>\n<thead>\n<tr>\n<th>a</th>\n<th style="text-align:center">b</th>\n</tr>\n</thead>\n<tbody>\n<tr>\n<td>1</td>\n<td style="text-align:center">2</td>\n</tr>\n</tbody>\n</table>',
    ],
    [
      "```js\nlet x = '<b>';\n```",
      "<pre><code class=\"language-js\">let x = '&lt;b&gt;';\n</code></pre>",
    ],
    [
      "> quoted\n\n- one\n- two",
      "<blockquote>\n<p>quoted</p>\n</blockquote>\n<ul>\n<li>one</li>\n<li>two</li>\n</ul>",
    ],
    [
      "https://example.org/a?b=1 and [text](http://example.org) and [m](mailto:a@b.org)",
      `<p><a href="https://example.org/a?b=1" ${LINK}>https://example.org/a?b=1</a> and <a href="http://example.org" ${LINK}>text</a> and <a href="mailto:a@b.org" ${LINK}>m</a></p>`,
    ],
    [
      "![diagram](https://example.org/d.png)",
      `<p><a class="image-link" href="https://example.org/d.png" ${LINK}>diagram</a></p>`,
    ],
  ];
  for (const [input, expected] of cases) assert.equal(html(input), expected, input);
});

Deno.test("hostile messages come out as text: no element, no handler, no script link", () => {
  const cases: Array<[string, string]> = [
    [
      "<img src=x onerror=alert(1)> <script>alert(2)</script> [x](javascript:alert(3))",
      "<p>&lt;img src=x onerror=alert(1)&gt; &lt;script&gt;alert(2)&lt;/script&gt; [x](javascript:alert(3))</p>",
    ],
    [
      '<a href="javascript:alert(1)">a</a> <svg onload=alert(1)> <iframe src=x>',
      "<p>&lt;a href=&quot;javascript:alert(1)&quot;&gt;a&lt;/a&gt; &lt;svg onload=alert(1)&gt; &lt;iframe src=x&gt;</p>",
    ],
    ["[y](JaVaScRiPt:alert(1))", "<p>[y](JaVaScRiPt:alert(1))</p>"],
    ["[y](&#106;avascript:alert(1))", "<p>[y](javascript:alert(1))</p>"],
    [
      "[d](data:text/html,x) [v](vbscript:x) [f](file:///etc/passwd)",
      "<p>[d](data:text/html,x) [v](vbscript:x) [f](file:///etc/passwd)</p>",
    ],
    ["[p](//evil.example/x)", "<p>[p](//evil.example/x)</p>"],
    ["<javascript:alert(1)>", "<p>&lt;javascript:alert(1)&gt;</p>"],
    ['![p](x" onerror="alert(1))', "<p>![p](x&quot; onerror=&quot;alert(1))</p>"],
    ["<div><b>unclosed <i", "<p>&lt;div&gt;&lt;b&gt;unclosed &lt;i</p>"],
    [
      "```\n</code></pre><script>x</script>\n```",
      "<pre><code>&lt;/code&gt;&lt;/pre&gt;&lt;script&gt;x&lt;/script&gt;\n</code></pre>",
    ],
    [
      '@bob"><script>',
      '<p><a class="mention" href="u.html#u-b" title="Bob Builder">@bob</a>&quot;&gt;&lt;script&gt;</p>',
    ],
  ];
  for (const [input, expected] of cases) assert.equal(html(input), expected, input);
});

Deno.test("a 16,383-rune message and a very long line render whole and fast", () => {
  const long = "é".repeat(16_383);
  const started = performance.now();
  assert.equal(html(long), `<p>${long}</p>`);
  const line = "word ".repeat(20_000).trim();
  assert.equal(html(line), `<p>${line}</p>`);
  const nested = "> ".repeat(500) + "deep " + "*".repeat(5_000);
  assert.doesNotMatch(html(nested), /<script/);
  assert.ok(performance.now() - started < 2_000, "rendered in under 2 s");
});

Deno.test("links keep only http, https, mailto and relative targets", () => {
  for (
    const ok of [
      "https://x.org",
      "HTTP://x.org",
      "mailto:a@b.c",
      "page.html#x",
      "/abs",
      "#a",
      "?q=1",
    ]
  ) {
    assert.ok(isAllowedLink(ok), ok);
  }
  for (
    const bad of [
      "javascript:alert(1)",
      " javascript:x",
      "data:text/html,x",
      "vbscript:x",
      "file:///x",
      "//x.org",
      "\\\\x.org\\y",
      "ftp://x",
    ]
  ) {
    assert.ok(!isAllowedLink(bad), bad);
  }
});
