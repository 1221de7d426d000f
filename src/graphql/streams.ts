// Small helpers for subscription streams. Hand-written iterators rather than async generators: a
// generator's `finally` does not run while it waits inside `yield*`, so an unsubscribe would leak
// the underlying stream until its next item.
import type { Context } from "./context.js";

type Source<T, H> = AsyncIterator<T> & { return?: () => Promise<IteratorResult<T>>; handover?: () => H | null };

/** A subscriber's stream; `handover` passes a caught-up source on to a shared tap (src/graphql/multicast.ts). */
export type SubscriberStream<T, H = unknown> = AsyncIterableIterator<T> & {
  /**
   * The source's hand-over (its position and filter) once it is caught up and nothing is queued
   * here, else null. The revocation watch stays: `onEnd` is called when the stream ends (revoked
   * token, or return()).
   */
  handover(onEnd: () => void): H | null;
};

/**
 * The stream a subscriber receives: optionally `first` items before `source`, and ended at once
 * when the subscriber leaves, or when the token it authenticated with is revoked (so SSE streams
 * stop as WebSockets are closed).
 */
export function subscriberStream<T, H>(ctx: Context, source: Source<T, H>, first: T[] = []): SubscriberStream<T, H> {
  const queue = [...first];
  let done = false;
  let onEnd: (() => void) | null = null;
  // Dropped once handed over (the source is closed then): a live subscriber keeps no more than it needs.
  let src: Source<T, H> | null = source;
  const close = async (): Promise<IteratorResult<T>> => {
    if (!done) {
      done = true;
      stopWatching();
      await src?.return?.();
      onEnd?.();
    }
    return { value: undefined, done: true };
  };
  const tokenId = ctx.principal?.tokenId;
  const tokens = ctx.tokens; // not ctx itself: a subscriber keeps no more than it needs
  const stopWatching = tokenId ? tokens.onRevoked((revoked) => revoked === tokenId && void close()) : () => {};
  const it: SubscriberStream<T, H> = {
    handover(end) {
      if (done || queue.length || !src?.handover) return null;
      const h = src.handover();
      if (h) {
        onEnd = end;
        src = null;
      }
      return h;
    },
    async next() {
      if (done) return { value: undefined, done: true };
      if (queue.length) return { value: queue.shift() as T, done: false };
      if (!src) return { value: undefined, done: true }; // handed over: its events go to the tap
      const r = await src.next();
      if (r.done) {
        done = true;
        stopWatching();
      }
      return r;
    },
    return: close,
    async throw(err?: unknown) {
      await close();
      throw err;
    },
    [Symbol.asyncIterator]() {
      return it;
    },
  };
  return it;
}
