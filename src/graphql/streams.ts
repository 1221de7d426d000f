// Small helpers for subscription streams. Hand-written iterators rather than async generators: a
// generator's `finally` does not run while it waits inside `yield*`, so an unsubscribe would leak
// the underlying stream until its next item.
import type { Context } from "./context.js";

type Source<T> = AsyncIterator<T> & { return?: () => Promise<IteratorResult<T>> };

/**
 * The stream a subscriber receives: optionally `first` items before `source`, and ended at once
 * when the subscriber leaves, or when the token it authenticated with is revoked (so SSE streams
 * stop as WebSockets are closed).
 */
export function subscriberStream<T>(ctx: Context, source: Source<T>, first: T[] = []): AsyncIterableIterator<T> {
  const queue = [...first];
  let done = false;
  const close = async (): Promise<IteratorResult<T>> => {
    if (!done) {
      done = true;
      stopWatching();
      await source.return?.();
    }
    return { value: undefined, done: true };
  };
  const tokenId = ctx.principal?.tokenId;
  const stopWatching = tokenId ? ctx.tokens.onRevoked((revoked) => revoked === tokenId && void close()) : () => {};
  const it: AsyncIterableIterator<T> = {
    async next() {
      if (done) return { value: undefined, done: true };
      if (queue.length) return { value: queue.shift() as T, done: false };
      const r = await source.next();
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
