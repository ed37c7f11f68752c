// matterbak view: what JavaScript adds to pages that read without it: the search (index
// page), threads opened in place, local times and keyboard shortcuts. Pages opened from file://
// may not fetch, so the search index and threads arrive through <script> elements calling
// MB.seg, MB.docs, MB.index and MB.thread. Every text from the archive is put in the page with
// textContent, never as HTML; a thread is the HTML the build wrote for its thread page (text in
// it escaped as in every page). The build appends MB.tokenize (the tokenizer the index was
// built with).
"use strict";
const MB = {
  segments: {},
  docStore: {},
  info: null,
  threads: {},
  thread: function (rootId, html) {
    MB.threads[rootId] = html;
  },
  seg: function (key, body) {
    MB.segments[key] = body;
  },
  docs: function (key, list) {
    MB.docStore[key] = list;
  },
  index: function (info) {
    MB.info = info;
  },
};

(function () {
  const root = document.body ? document.body.getAttribute("data-root") || "" : "";
  const loading = {};

  function load(src) {
    if (!loading[src]) {
      loading[src] = new Promise(function (resolve) {
        const s = document.createElement("script");
        s.src = root + src;
        s.onload = function () {
          resolve(true);
        };
        s.onerror = function () {
          resolve(false);
        };
        document.head.appendChild(s);
      });
    }
    return loading[src];
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Local times: the pages carry the build's time zone; the reader's is shown instead.
  function localTimesIn(scope) {
    const times = scope.querySelectorAll(".post header time[datetime]");
    const fmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
    const full = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });
    for (let i = 0; i < times.length; i++) {
      const d = new Date(times[i].getAttribute("datetime"));
      if (isNaN(d.getTime())) continue;
      times[i].textContent = fmt.format(d);
      times[i].title = full.format(d);
    }
  }

  // Threads in place: a root's reply count opens its replies in a panel under it, loaded from
  // t-<rootId>.js (written with the thread page); Escape or the close button closes it. The
  // link still leads to the thread page (new tab, or when the script cannot load).
  function threadsInPlace() {
    const main = document.querySelector("main[data-channel]");
    if (!main) return;
    const channel = main.getAttribute("data-channel");
    const links = main.querySelectorAll("article > .body > .thread-link a");
    for (let i = 0; i < links.length; i++) {
      const link = links[i];
      const article = link.closest("article");
      link.setAttribute("aria-expanded", "false");
      link.setAttribute("aria-controls", "thread-" + article.id);
      link.addEventListener("click", function (event) {
        if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey) return;
        event.preventDefault();
        toggleThread(channel, article, link);
      });
    }
  }

  function closeThread(panel, link) {
    panel.remove();
    link.setAttribute("aria-expanded", "false");
    link.focus();
  }

  function toggleThread(channel, article, link) {
    const rootId = article.id;
    const existing = document.getElementById("thread-" + rootId);
    if (existing) {
      closeThread(existing, link);
      return;
    }
    const panel = el("section", "thread-panel");
    panel.id = "thread-" + rootId;
    panel.tabIndex = -1;
    panel.setAttribute("aria-label", "Replies to this message");
    const head = el("div", "thread-head");
    head.appendChild(el("strong", "", link.textContent));
    const page = el("a", "", "open as a page");
    page.href = link.getAttribute("href");
    head.appendChild(page);
    const close = el("button", "thread-close", "Close");
    close.type = "button";
    close.setAttribute("aria-label", "Close the replies");
    close.addEventListener("click", function () {
      closeThread(panel, link);
    });
    head.appendChild(close);
    panel.appendChild(head);
    const body = el("div", "thread-posts", "Loading…");
    panel.appendChild(body);
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape") closeThread(panel, link);
    });
    article.after(panel);
    link.setAttribute("aria-expanded", "true");
    load("c/" + channel + "/t-" + rootId + ".js").then(function (ok) {
      const html = MB.threads[rootId];
      if (!ok || typeof html !== "string") {
        location.href = link.href;
        return;
      }
      const template = document.createElement("template");
      template.innerHTML = html;
      // The root is shown above; the replies keep no id (the page has them as anchors).
      const posts = template.content.querySelectorAll("article");
      for (let i = 0; i < posts.length; i++) {
        if (posts[i].id === rootId) posts[i].remove();
        else {
          posts[i].setAttribute("data-id", posts[i].id);
          posts[i].removeAttribute("id");
        }
      }
      body.textContent = "";
      body.appendChild(template.content);
      localTimesIn(body);
      panel.focus();
    });
  }

  function keyboard() {
    document.addEventListener("keydown", function (event) {
      const t = event.target;
      if (event.altKey || event.ctrlKey || event.metaKey) return;
      if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) {
        return;
      }
      if (event.key === "/") {
        const box = document.querySelector("input[type=search]");
        if (box) {
          event.preventDefault();
          box.focus();
        }
      } else if (event.key === "[" || event.key === "]") {
        const link = document.querySelector(event.key === "[" ? "a[rel=prev]" : "a[rel=next]");
        if (link) location.href = link.href;
      }
    });
  }

  // ---- search ---------------------------------------------------------------------------

  function numbers(text) {
    if (!text) return [];
    return text.split(",").map(function (n) {
      return parseInt(n, 36);
    });
  }

  function decoded(seg) {
    if (!seg.authors) {
      seg.authors = numbers(seg.a);
      const t = numbers(seg.t);
      for (let i = 1; i < t.length; i++) t[i] += t[i - 1];
      seg.times = t;
    }
    return seg;
  }

  /** Post numbers of a segment holding `term` (or, with prefix, any term starting so). */
  function postings(seg, term, prefix) {
    const x = seg.x;
    const out = {};
    let at = x.indexOf("\n" + term + (prefix ? "" : ":"));
    while (at >= 0) {
      const colon = x.indexOf(":", at);
      let end = x.indexOf("\n", at + 1);
      if (end < 0) end = x.length;
      if (x.slice(at + 1, colon).lastIndexOf(term, 0) !== 0) break;
      const list = numbers(x.slice(colon + 1, end));
      for (let i = 0; i < list.length; i++) out[list[i]] = true;
      if (!prefix || end === x.length) break;
      at = end;
    }
    return out;
  }

  function dayStart(value, endOfDay) {
    if (!value) return undefined;
    const parts = value.split("-");
    const d = new Date(+parts[0], +parts[1] - 1, +parts[2] + (endOfDay ? 1 : 0));
    return d.getTime() / 1000 - (endOfDay ? 1 : 0);
  }

  /** Hits of a query over the loaded segments: [key, post number, time], newest first. */
  function run(query, keys) {
    const terms = MB.tokenize(query.text);
    const prefixLast = !/\s$/.test(query.text);
    const hits = [];
    if (!terms.length && !query.author && query.from === undefined && query.to === undefined) {
      return hits;
    }
    for (let k = 0; k < keys.length; k++) {
      const seg = MB.segments[keys[k]];
      if (!seg) continue;
      decoded(seg);
      let set = null;
      for (let i = 0; i < terms.length; i++) {
        const found = postings(seg, terms[i], prefixLast && i === terms.length - 1);
        if (set) {
          for (const n in set) if (!found[n]) delete set[n];
        } else set = found;
      }
      const authorIndex = query.author ? seg.u.indexOf(query.author) : -1;
      if (query.author && authorIndex < 0) continue;
      const candidates = set ? Object.keys(set).map(Number) : seg.times.map(function (_, j) {
        return j;
      });
      for (let c = 0; c < candidates.length; c++) {
        const p = candidates[c];
        const time = seg.times[p];
        if (query.author && seg.authors[p] !== authorIndex) continue;
        if (query.from !== undefined && time < query.from) continue;
        if (query.to !== undefined && time > query.to) continue;
        hits.push([keys[k], p, time, seg.u[seg.authors[p]]]);
      }
    }
    hits.sort(function (a, b) {
      return b[2] - a[2];
    });
    return hits;
  }

  function highlight(parent, text, terms) {
    if (!terms.length) {
      parent.appendChild(document.createTextNode(text));
      return;
    }
    const pattern = new RegExp(
      "(" + terms.map(function (t) {
        return t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      }).join("|") + ")",
      "gi",
    );
    let last = 0;
    text.replace(pattern, function (match, _g, offset) {
      parent.appendChild(document.createTextNode(text.slice(last, offset)));
      parent.appendChild(el("mark", "", match));
      last = offset + match.length;
      return match;
    });
    parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function searchPage() {
    const section = document.getElementById("search");
    if (!section) return;
    section.hidden = false;
    const box = document.getElementById("q");
    const channelBox = document.getElementById("f-channel");
    const authorBox = document.getElementById("f-author");
    const fromBox = document.getElementById("f-from");
    const toBox = document.getElementById("f-to");
    const status = document.getElementById("search-status");
    const list = document.getElementById("results");
    const params = new URLSearchParams(location.search);
    box.value = params.get("q") || "";
    if (params.get("channel")) channelBox.value = params.get("channel");
    let shown = 50;
    let generation = 0;

    function channelsOf() {
      const chosen = channelBox.value;
      return MB.info.channels.filter(function (c) {
        return !chosen || c.id === chosen;
      });
    }

    function keysOf(channels) {
      const keys = [];
      channels.forEach(function (c) {
        for (let n = 1; n <= c.pages; n++) keys.push(c.id + "/" + n);
      });
      return keys;
    }

    function update() {
      const mine = ++generation;
      const query = {
        text: box.value,
        author: authorBox.value,
        from: dayStart(fromBox.value, false),
        to: dayStart(toBox.value, true),
      };
      const keys = keysOf(channelsOf());
      const missing = keys.filter(function (k) {
        return !MB.segments[k];
      });
      if (missing.length) status.textContent = "Loading the index (" + missing.length + " files)…";
      const started = Date.now();
      Promise.all(missing.map(function (k) {
        return load("search/" + k + ".js");
      })).then(function () {
        if (mine !== generation) return;
        const hits = run(query, keys);
        const page = hits.slice(0, shown);
        const docKeys = {};
        page.forEach(function (h) {
          docKeys[h[0]] = true;
        });
        return Promise.all(
          Object.keys(docKeys).map(function (k) {
            return load("search/" + k + "d.js");
          }),
        ).then(function () {
          if (mine !== generation) return;
          show(hits, page, MB.tokenize(query.text), Date.now() - started);
        });
      });
    }

    function show(hits, page, terms, ms) {
      list.textContent = "";
      if (!terms.length && !authorBox.value && !fromBox.value && !toBox.value) {
        status.textContent = "";
        return;
      }
      status.textContent = hits.length + (hits.length === 1 ? " message" : " messages") +
        " (" + ms + " ms)";
      const titles = {};
      MB.info.channels.forEach(function (c) {
        titles[c.id] = c.team ? c.title + " (" + c.team + ")" : c.title;
      });
      const when = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
      page.forEach(function (h) {
        const doc = (MB.docStore[h[0]] || [])[h[1]];
        if (!doc) return;
        const parts = h[0].split("/");
        const li = el("li", "result");
        const a = el("a");
        a.href = root + "c/" + parts[0] + "/p" + parts[1] + ".html#" + doc[0];
        const head = el("span", "result-head");
        const who = MB.info.users[h[3]];
        head.appendChild(el("strong", "", who ? who[0] : h[3]));
        head.appendChild(el(
          "span",
          "meta",
          " in " + titles[parts[0]] + " · " +
            when.format(new Date(h[2] * 1000)),
        ));
        a.appendChild(head);
        const text = el("span", "result-text");
        highlight(text, doc[1], terms);
        a.appendChild(text);
        li.appendChild(a);
        list.appendChild(li);
      });
      if (hits.length > page.length) {
        const more = el("button", "more", "Show more");
        more.type = "button";
        more.addEventListener("click", function () {
          shown += 50;
          update();
        });
        const li = el("li");
        li.appendChild(more);
        list.appendChild(li);
      }
    }

    load("search/index.js").then(function (ok) {
      if (!ok || !MB.info) {
        status.textContent = "The search index is missing.";
        return;
      }
      const people = Object.keys(MB.info.users).map(function (id) {
        return [id, MB.info.users[id]];
      }).sort(function (a, b) {
        return a[1][0].localeCompare(b[1][0]);
      });
      people.forEach(function (p) {
        const option = el("option", "", p[1][0] + " (@" + p[1][1] + ")");
        option.value = p[0];
        authorBox.appendChild(option);
      });
      let timer;
      const later = function () {
        shown = 50;
        clearTimeout(timer);
        timer = setTimeout(update, 120);
      };
      box.addEventListener("input", later);
      [channelBox, authorBox, fromBox, toBox].forEach(function (b) {
        b.addEventListener("change", later);
      });
      document.querySelector(".search-panel").addEventListener("submit", function (event) {
        event.preventDefault();
        update();
      });
      if (box.value) update();
      else {
        // Load the index while the reader types: the first answer then needs no loading.
        keysOf(MB.info.channels).forEach(function (k) {
          load("search/" + k + ".js");
        });
      }
      box.focus();
    });
  }

  function start() {
    localTimesIn(document);
    threadsInPlace();
    keyboard();
    searchPage();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
