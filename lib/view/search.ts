/**
 * The site's search index: one segment per channel page, loaded by the browser through
 * `<script src>` (pages opened from file:// may not fetch). A segment is a call
 * `MB.seg(key, {...})` holding its posts' authors and times and one sorted string of
 * `\n<term>:<post numbers>` lines, which the browser scans with indexOf: a string literal costs
 * the browser almost nothing to load, and a prefix's terms are adjacent. The posts' text for
 * the results is in a second file per segment, loaded only for the results shown.
 *
 * Why not a library: see README (MiniSearch and FlexSearch serialise one whole index, which
 * neither loads in under a second at 200,000 posts nor can be rewritten in part).
 */

/**
 * The words of a text as the index keeps them: lower case, accents removed, letters and digits
 * only, 2 to 40 characters. This function is also sent to the browser as its source text
 * (`tokenize.toString()`), so the query is cut exactly as the index was: it must not refer to
 * anything outside itself.
 */
export function tokenize(text: string): string[] {
  const words = text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
    .split(/[^\p{L}\p{N}]+/u);
  const out: string[] = [];
  const seen: Record<string, true> = {};
  for (const word of words) {
    if (word.length < 2 || word.length > 40 || seen[word]) continue;
    seen[word] = true;
    out.push(word);
  }
  return out;
}

/** One page's posts as the search sees them. */
export class SegmentBuilder {
  readonly #terms = new Map<string, number[]>();
  readonly #authors: string[] = [];
  readonly #authorIndex = new Map<string, number>();
  readonly #authorOf: number[] = [];
  readonly #times: number[] = [];
  readonly #docs: [string, string][] = [];

  get size(): number {
    return this.#docs.length;
  }

  add(post: { id: string; user_id: string; create_at: number }, text: string): void {
    const n = this.#docs.length;
    for (const term of tokenize(text)) {
      const list = this.#terms.get(term);
      if (list) list.push(n);
      else this.#terms.set(term, [n]);
    }
    let author = this.#authorIndex.get(post.user_id);
    if (author === undefined) {
      author = this.#authors.length;
      this.#authors.push(post.user_id);
      this.#authorIndex.set(post.user_id, author);
    }
    this.#authorOf.push(author);
    this.#times.push(Math.floor(post.create_at / 1000));
    this.#docs.push([post.id, snippet(text)]);
  }

  /**
   * The builder that wrote these two scripts, to change some of its posts in place (a rebuild
   * that re-renders a few posts of a page); undefined unless writing it again gives exactly
   * these scripts.
   */
  static parse(key: string, indexScript: string, docsScript: string): SegmentBuilder | undefined {
    const body = (script: string, call: string) => {
      const head = `${call}(${scriptJson(key)},`;
      if (!script.startsWith(head) || !script.endsWith(");\n")) return undefined;
      try {
        return JSON.parse(script.slice(head.length, -3));
      } catch {
        return undefined;
      }
    };
    const seg = body(indexScript, "MB.seg");
    const docs = body(docsScript, "MB.docs");
    if (!seg || !Array.isArray(docs) || typeof seg.x !== "string") return undefined;
    const numbers = (list: string) =>
      list === "" ? [] : list.split(",").map((n) => parseInt(n, 36));
    const b = new SegmentBuilder();
    for (const line of seg.x.split("\n").slice(1)) {
      const at = line.lastIndexOf(":");
      b.#terms.set(line.slice(0, at), numbers(line.slice(at + 1)));
    }
    (seg.u as string[]).forEach((user, i) => {
      b.#authors.push(user);
      b.#authorIndex.set(user, i);
    });
    b.#authorOf.push(...numbers(seg.a));
    let time = 0;
    for (const [i, delta] of numbers(seg.t).entries()) {
      time = i === 0 ? delta : time + delta;
      b.#times.push(time);
    }
    b.#docs.push(...docs);
    return b.indexScript(key) === indexScript && b.docsScript(key) === docsScript ? b : undefined;
  }

  /** Post `n` (its author and time unchanged) now has `text`; false when `n` is another post. */
  replace(n: number, post: { id: string }, text: string): boolean {
    if (this.#docs[n]?.[0] !== post.id) return false;
    for (const [term, list] of this.#terms) {
      const at = list.indexOf(n);
      if (at === -1) continue;
      list.splice(at, 1);
      if (list.length === 0) this.#terms.delete(term);
    }
    for (const term of tokenize(text)) {
      const list = this.#terms.get(term);
      if (!list) this.#terms.set(term, [n]);
      else {
        let at = list.length;
        while (at > 0 && (list[at - 1] as number) > n) at--;
        list.splice(at, 0, n);
      }
    }
    this.#docs[n] = [post.id, snippet(text)];
    return true;
  }

  /** The segment's script: `MB.seg(key, {u, a, t, x})`. */
  indexScript(key: string): string {
    const terms = [...this.#terms.keys()].sort();
    let x = "";
    for (const term of terms) {
      x += `\n${term}:${(this.#terms.get(term) as number[]).map((n) => n.toString(36)).join(",")}`;
    }
    // Times as seconds after the previous post: short numbers.
    let previous = this.#times[0] ?? 0;
    const t = this.#times.map((time, i) => {
      const delta = i === 0 ? time : time - previous;
      previous = time;
      return delta.toString(36);
    }).join(",");
    const body = {
      u: this.#authors,
      a: this.#authorOf.map((a) => a.toString(36)).join(","),
      t,
      x,
    };
    return `MB.seg(${scriptJson(key)},${scriptJson(body)});\n`;
  }

  /** The posts' ids and text: `MB.docs(key, [[id, text], ...])`. */
  docsScript(key: string): string {
    return `MB.docs(${scriptJson(key)},${scriptJson(this.#docs)});\n`;
  }
}

/** At most this many characters of a message are shown in a result. */
const SNIPPET_CHARS = 300;

function snippet(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > SNIPPET_CHARS ? `${flat.slice(0, SNIPPET_CHARS)}…` : flat;
}

/**
 * JSON that is safe inside a script file and a string literal: `</script>`, `<!--` and the
 * line separators JavaScript once refused are escaped.
 */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
