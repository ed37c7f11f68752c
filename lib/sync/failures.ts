/**
 * The run's failed items, recorded in one place: each is kept once (for the summary and the
 * report) and reported once (as an event), and an error that ends the whole run (a full disk,
 * an interruption) is thrown on instead of being recorded as one item's failure.
 */
import { describeError, isFatal } from "../util/errors.ts";
import type { EventSink, Failure } from "../util/events.ts";

export class FailureLog {
  readonly items: Failure[] = [];

  constructor(readonly emit: EventSink, readonly signal?: AbortSignal) {}

  /** Records `what` as failed because of `error`, unless `error` ends the run (rethrown). */
  record(what: string, error: unknown): void {
    if (isFatal(error, this.signal)) throw error;
    this.add({ what, why: describeError(error) });
  }

  /** Records a failure whose reason is already worded. */
  add(failure: Failure): void {
    this.items.push(failure);
    this.emit({ type: "failure", failure });
  }
}
