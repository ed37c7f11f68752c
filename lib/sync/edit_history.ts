/**
 * The server's edit history of the user's own posts (GET /posts/{id}/edit_history, servers 7.9
 * and later), shared by the channels of a run: a server without the endpoint is found out by
 * its first answer and asked no more.
 */
import { editHistoryAnswer, type MattermostApi } from "../api/mattermost.ts";
import type { Post } from "../model/records.ts";
import type { EventSink } from "../util/events.ts";

export class EditHistorySource {
  #missing = false;
  /** Whether the server has the endpoint is known (from an answer, not an error). */
  #known = false;
  /** The request that finds it out, while it is not known: the others wait for its answer. */
  #probe: Promise<unknown> | undefined;

  constructor(
    readonly api: MattermostApi,
    /** The user the backup runs as: only their own posts have an edit history to ask for. */
    readonly meId: string,
    readonly emit: EventSink,
  ) {}

  /** False once the server turned out to have no such endpoint. */
  get available(): boolean {
    return !this.#missing;
  }

  /**
   * The hidden copies of the post's earlier versions, text included; none when the server keeps
   * none or refuses (the post was deleted meanwhile, or may not be edited there); undefined when
   * the server has no such endpoint. Any other error is thrown: the post stays pending.
   */
  async copies(postId: string, label: string): Promise<Post[] | undefined> {
    if (this.#missing) return undefined;
    if (this.#known) return await this.#ask(postId, label);
    // One request finds out, not one per channel at once: a server without the endpoint is
    // asked once a run.
    while (this.#probe) {
      await this.#probe.catch(() => {});
      if (this.#missing) return undefined;
      if (this.#known) return await this.#ask(postId, label);
    }
    const probe = this.#ask(postId, label);
    this.#probe = probe;
    try {
      const copies = await probe;
      this.#known = true;
      return copies;
    } finally {
      this.#probe = undefined;
    }
  }

  async #ask(postId: string, label: string): Promise<Post[] | undefined> {
    try {
      return await this.api.editHistory(postId, label);
    } catch (error) {
      const answer = editHistoryAnswer(error);
      if (answer === undefined) throw error;
      if (answer !== "no-route") return [];
      if (!this.#missing) {
        this.#missing = true;
        this.emit({
          type: "info",
          message: "The server has no edit history to ask for (Mattermost 7.9 and later): " +
            "earlier versions of your own posts come only from the edits this backup sees",
        });
      }
      return undefined;
    }
  }
}
