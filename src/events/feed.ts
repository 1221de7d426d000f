// The event feed: how committed JobEvents reach subscribers, in every process sharing the database.
//
// One reader per process follows the job_event table by sequence number. It reads when it is poked:
// by this process right after a commit, by a Postgres NOTIFY from any process (sent inside the
// writing transaction, so only on commit), and by a slow timer as a safety net. A notification is
// only a hint; the table is the truth, so a lost or duplicated NOTIFY costs nothing.
//
// A subscriber may start from a cursor (a seq). It then replays from the table, page by page as it
// consumes, and switches to the live stream with no gap and no duplicate:
//   - it registers with the reader BEFORE its last replay query, buffering what the reader dispatches;
//   - any event committed before that query started is in the query's result, and any event the
//     reader dispatches after registration is in the buffer; duplicates are dropped by seq.
// A subscriber that falls too far behind the live stream is not cut off: it drops its queue and goes
// back to replaying from the table at its own cursor. Nothing is ever skipped.
import type { JobEvent, JobEventKind } from "../store/events.js";
import { EVENTS_CHANNEL, lastSeq, readEventsDirect, type EventQuery, type Tx } from "../store/events.js";
import type { Database } from "../store/db.js";
import type { Logger } from "../logger.js";
import { PROGRESS_CHANNEL, ProgressHub } from "./progress.js";

export interface FeedOptions {
  /** Safety-net poll interval; NOTIFY and local pokes make delivery immediate. */
  pollIntervalMs?: number;
  /** Rows per query when reading or replaying. */
  pageSize?: number;
  /** A subscriber with more than this many undelivered live events goes back to replaying. */
  maxQueue?: number;
  /** Called once per committed event as it is dispatched (metrics). */
  onDispatch?: (e: JobEvent) => void;
}

export interface SubscribeOptions {
  jobId?: string;
  /** Deliver only events strictly after this seq; null/undefined = only what commits from now on. */
  after?: bigint | null;
  kinds?: ReadonlySet<JobEventKind>;
  /** Visibility scope: only this owner's jobs (undefined = all). */
  owner?: string;
}

/** A listener taking every dispatched event (a group of live subscribers, see src/graphql/multicast.ts). */
export interface FeedTap {
  offer(e: JobEvent): void;
  /** How many subscribers it serves (counted in subscriberCount). */
  readonly size: number;
}

/** What a caught-up subscription hands over to a tap: where it is, and what it wants. */
export interface Handover {
  cursor: bigint;
  opts: SubscribeOptions;
  matches(e: JobEvent): boolean;
}

export class EventFeed {
  private last = 0n;
  private readonly subs = new Set<FeedSubscription>();
  private readonly taps = new Set<FeedTap>();
  private reading: Promise<void> | null = null;
  private again = false;
  /** The highest seq asked for by pokes during a read (null: a poke that named none). */
  private againSeq: bigint | null = 0n;
  private timer: NodeJS.Timeout | null = null;
  private unlisten: (() => Promise<void>) | null = null;
  private unlistenProgress: (() => Promise<void>) | null = null;
  /** Progress notifications from every process (see progress.ts). */
  readonly progress = new ProgressHub();
  private stopped = false;
  readonly pageSize: number;
  readonly maxQueue: number;

  constructor(
    private readonly db: Database,
    private readonly logger?: Logger,
    private readonly opts: FeedOptions = {},
  ) {
    this.pageSize = opts.pageSize ?? 500;
    this.maxQueue = opts.maxQueue ?? 10_000;
  }

  get prisma(): Tx {
    return this.db.prisma;
  }

  /** Committed events after a cursor, in seq order (through the driver: the hottest read there is). */
  read(q: EventQuery) {
    return readEventsDirect(this.db, q);
  }

  /** The highest seq dispatched to live subscribers. */
  get position(): bigint {
    return this.last;
  }

  get subscriberCount(): number {
    let n = this.subs.size;
    for (const t of this.taps) n += t.size;
    return n;
  }

  /** Every event dispatched from now on, in seq order, is offered to `tap` (after the subscriptions). */
  tap(tap: FeedTap): () => void {
    this.taps.add(tap);
    return () => this.taps.delete(tap);
  }

  async start(): Promise<void> {
    this.last = await lastSeq(this.db.prisma);
    // The payload is the highest seq that commit appended: already read (this process's own commits,
    // read at once after the local poke) means nothing to do.
    this.unlisten = await this.db.listen(EVENTS_CHANNEL, (payload) => this.poke(/^\d{1,19}$/.test(payload) ? BigInt(payload) : undefined));
    this.unlistenProgress = await this.db.listen(PROGRESS_CHANNEL, (payload) => this.progress.publish(payload));
    this.timer = setInterval(() => this.poke(), this.opts.pollIntervalMs ?? 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.unlisten?.();
    await this.unlistenProgress?.();
    for (const s of [...this.subs]) s.close();
    await this.reading?.catch(() => {});
  }

  /** Read whatever has been committed since the last read. Cheap to call often: calls coalesce. */
  poke(seq?: bigint): void {
    if (this.stopped) return;
    // `seq`: a commit's highest seq (a NOTIFY's payload, or this process's own commit). Read already:
    // nothing to do. Without it, read whatever is there.
    if (seq !== undefined && seq <= this.last) return;
    if (this.reading) {
      this.again = true;
      if (seq === undefined || this.againSeq === null) this.againSeq = null;
      else if (seq > this.againSeq) this.againSeq = seq;
      return;
    }
    this.reading = this.readAll()
      .catch((err) => this.logger?.warn({ err }, "event feed read failed; will retry"))
      .finally(() => {
        this.reading = null;
        if (this.again && !this.stopped) {
          const want = this.againSeq;
          this.again = false;
          this.againSeq = 0n;
          // The read that just ended may already have covered every commit that poked meanwhile.
          this.poke(want ?? undefined);
        }
      });
  }

  /** Resolves once every event committed before the call has been dispatched (tests, shutdown). */
  async sync(): Promise<void> {
    const target = await lastSeq(this.db.prisma);
    while (this.last < target && !this.stopped) {
      this.poke();
      await (this.reading ?? Promise.resolve());
      if (this.last < target) await new Promise((r) => setTimeout(r, 5));
    }
  }

  private async readAll(): Promise<void> {
    for (;;) {
      const rows = await this.read({ after: this.last, limit: this.pageSize });
      for (const row of rows) {
        this.last = row.seq;
        this.opts.onDispatch?.(row);
        for (const s of this.subs) s.offer(row);
        for (const t of this.taps) t.offer(row);
      }
      if (rows.length < this.pageSize) return;
    }
  }

  subscribe(opts: SubscribeOptions): FeedSubscription {
    const sub = new FeedSubscription(this, opts, (s) => this.subs.delete(s));
    this.subs.add(sub);
    return sub;
  }
}

function matchesOptions(opts: SubscribeOptions, e: JobEvent): boolean {
  if (opts.jobId && e.jobId !== opts.jobId) return false;
  if (opts.kinds && !opts.kinds.has(e.kind)) return false;
  if (opts.owner !== undefined && e.owner !== opts.owner) return false;
  return true;
}

/** One subscriber's ordered stream of events; an async iterator that pulls replay pages on demand. */
export class FeedSubscription implements AsyncIterableIterator<JobEvent> {
  /** Highest seq delivered (or skipped as not matching while replaying). */
  private cursor: bigint;
  private replaying: boolean;
  private queue: JobEvent[] = [];
  /** Live events collected while replaying; null = not collecting (overflowed: collect again before the next query). */
  private buffer: JobEvent[] | null = null;
  private waiter: ((r: IteratorResult<JobEvent>) => void) | null = null;
  private closed = false;

  constructor(
    private readonly feed: EventFeed,
    private readonly opts: SubscribeOptions,
    private readonly onClose: (s: FeedSubscription) => void,
  ) {
    if (opts.after === undefined || opts.after === null) {
      this.cursor = feed.position; // live from here
      this.replaying = false;
    } else {
      this.cursor = opts.after;
      this.replaying = true;
    }
  }

  /**
   * When caught up (live, nothing queued): closes this subscription and returns its position and
   * filter, for a tap to deliver what is dispatched from now on; otherwise null. Every event
   * dispatched before the call was offered here, so it has been delivered: no gap, and with the
   * cursor, no duplicate.
   */
  handover(): Handover | null {
    if (this.closed || this.replaying || this.queue.length || this.waiter) return null;
    const cursor = this.cursor;
    this.close();
    const opts = this.opts; // not `this`: the tap keeps the filter, not the closed subscription
    return { cursor, opts, matches: (e) => matchesOptions(opts, e) };
  }

  private matches(e: JobEvent): boolean {
    return matchesOptions(this.opts, e);
  }

  /** Called by the reader, in seq order, for every committed event. */
  offer(e: JobEvent): void {
    if (this.closed || !this.matches(e)) return;
    if (this.replaying) {
      if (this.buffer) {
        this.buffer.push(e);
        if (this.buffer.length > this.feed.maxQueue) this.buffer = null; // re-read it from the table instead
      }
      return;
    }
    if (e.seq <= this.cursor) return;
    this.cursor = e.seq;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w({ value: e, done: false });
      return;
    }
    this.queue.push(e);
    if (this.queue.length > this.feed.maxQueue) {
      // Too slow for the live stream: fall back to reading the table from the first undelivered event.
      this.cursor = this.queue[0]!.seq - 1n;
      this.queue = [];
      this.replaying = true;
      this.buffer = null;
    }
  }

  async next(): Promise<IteratorResult<JobEvent>> {
    for (;;) {
      if (this.closed) return { value: undefined, done: true };
      const head = this.queue.shift();
      if (head) return { value: head, done: false };
      if (!this.replaying) {
        return new Promise((resolve) => {
          this.waiter = resolve;
        });
      }
      await this.replayPage();
    }
  }

  private async replayPage(): Promise<void> {
    this.buffer ??= []; // start collecting live events before the query (see the header comment)
    const rows = await this.feed.read({
      after: this.cursor,
      jobId: this.opts.jobId,
      kinds: this.opts.kinds ? [...this.opts.kinds] : undefined,
      owner: this.opts.owner,
      limit: this.feed.pageSize,
    });
    if (this.closed) return;
    for (const r of rows) {
      if (r.seq > this.cursor) {
        this.queue.push(r);
        this.cursor = r.seq;
      }
    }
    if (rows.length < this.feed.pageSize && this.buffer) {
      // Caught up: the buffer holds everything dispatched since before this query.
      for (const e of this.buffer) {
        if (e.seq > this.cursor) {
          this.queue.push(e);
          this.cursor = e.seq;
        }
      }
      this.buffer = null;
      this.replaying = false;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.buffer = null;
    this.onClose(this);
    const w = this.waiter;
    this.waiter = null;
    w?.({ value: undefined, done: true });
  }

  async return(): Promise<IteratorResult<JobEvent>> {
    this.close();
    return { value: undefined, done: true };
  }

  async throw(err?: unknown): Promise<IteratorResult<JobEvent>> {
    this.close();
    throw err;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
