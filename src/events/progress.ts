// Progress: bytes moving are not state transitions, so they are not written to the JobEvent log
// (a long download would flood it). The worker persists progress on the job and file rows at most
// every 500 ms per job and at every file boundary, and in the same transaction sends a NOTIFY on
// `haul_progress` carrying the new totals: delivered to every process only if the write commits.
// Subscribers get the latest figures (droppable, like BITS's JobModification callbacks); the row
// always holds the truth, and a new subscriber starts from it.
export const PROGRESS_CHANNEL = "haul_progress";

export interface ProgressMessage {
  jobId: string;
  owner: string;
  state: string;
  bytesTransferred: string;
  bytesTotal: string | null;
  filesTransferred: number;
  filesTotal: number;
  /** current rate over the last report interval */
  bytesPerSecond: number;
  at: string;
}

/** The message for a job row as written (and the rate measured by the worker). */
export function progressMessageOf(
  job: { id: string; owner: string; state: string; bytesTransferred: bigint; bytesTotal: bigint | null; filesTransferred: number; filesTotal: number; modifiedAt: Date },
  bytesPerSecond: number,
): ProgressMessage {
  return {
    jobId: job.id,
    owner: job.owner,
    state: job.state,
    bytesTransferred: job.bytesTransferred.toString(),
    bytesTotal: job.bytesTotal === null ? null : job.bytesTotal.toString(),
    filesTransferred: job.filesTransferred,
    filesTotal: job.filesTotal,
    bytesPerSecond: Math.round(bytesPerSecond),
    at: job.modifiedAt.toISOString(),
  };
}

type Listener = (m: ProgressMessage) => void;

/** A listener taking every progress message (a group of live subscribers, see src/graphql/multicast.ts). */
export interface ProgressTap {
  offer(m: ProgressMessage): void;
  readonly size: number;
}

export interface ProgressFilter {
  jobId?: string;
  owner?: string;
}

export function progressMatches(filter: ProgressFilter, m: ProgressMessage): boolean {
  if (filter.jobId && m.jobId !== filter.jobId) return false;
  if (filter.owner !== undefined && m.owner !== filter.owner) return false;
  return true;
}

/** In-process fan-out of progress notifications from every process. */
export class ProgressHub {
  private readonly listeners = new Set<Listener>();
  private readonly taps = new Set<ProgressTap>();

  get size(): number {
    let n = this.listeners.size;
    for (const t of this.taps) n += t.size;
    return n;
  }

  tap(tap: ProgressTap): () => void {
    this.taps.add(tap);
    return () => this.taps.delete(tap);
  }

  publish(payload: string): void {
    let m: ProgressMessage;
    try {
      m = JSON.parse(payload) as ProgressMessage;
    } catch {
      return;
    }
    for (const l of this.listeners) l(m);
    for (const t of this.taps) t.offer(m);
  }

  /** An async iterator of the progress of one job (or all), newest wins when the consumer is slow. */
  subscribe(filter: ProgressFilter): AsyncIterableIterator<ProgressMessage> & { close(): void; handover(): { matches(m: ProgressMessage): boolean } | null } {
    const pending = new Map<string, ProgressMessage>(); // per job: only the latest matters
    let waiter: ((r: IteratorResult<ProgressMessage>) => void) | null = null;
    let closed = false;
    const listener: Listener = (m) => {
      if (!progressMatches(filter, m)) return;
      if (waiter) {
        const w = waiter;
        waiter = null;
        w({ value: m, done: false });
      } else {
        pending.delete(m.jobId);
        pending.set(m.jobId, m);
      }
    };
    this.listeners.add(listener);
    const close = () => {
      if (closed) return;
      closed = true;
      this.listeners.delete(listener);
      waiter?.({ value: undefined, done: true });
      waiter = null;
    };
    const it = {
      next(): Promise<IteratorResult<ProgressMessage>> {
        if (closed) return Promise.resolve({ value: undefined, done: true });
        const first = pending.entries().next();
        if (!first.done) {
          pending.delete(first.value[0]);
          return Promise.resolve({ value: first.value[1], done: false });
        }
        return new Promise((resolve) => (waiter = resolve));
      },
      return(): Promise<IteratorResult<ProgressMessage>> {
        close();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return it;
      },
      close,
      // When nothing is pending: stop listening and hand the filter to a tap (see feed.ts).
      handover() {
        if (closed || waiter || pending.size) return null;
        close();
        return { matches: (m: ProgressMessage) => progressMatches(filter, m) };
      },
    };
    return it as AsyncIterableIterator<ProgressMessage> & { close(): void; handover(): { matches(m: ProgressMessage): boolean } | null };
  }
}
