// Bandwidth limits: token buckets. A transfer takes tokens from the global bucket
// (HAUL_MAX_BYTES_PER_SECOND) and from its job's bucket (Job.maxBytesPerSecond) before it writes a
// chunk; waiting on the bucket pauses reading the socket, so TCP backpressure slows the sender.
// The burst is a tenth of a second's worth, so the rate holds within a few percent over seconds.
export class TokenBucket {
  private tokens: number;
  private last: number;
  private rate: number;

  constructor(bytesPerSecond: number) {
    this.rate = bytesPerSecond;
    this.tokens = this.burst;
    this.last = performance.now();
  }

  get bytesPerSecond(): number {
    return this.rate;
  }

  /** Changes the rate at once (updateJob mid-transfer). */
  setRate(bytesPerSecond: number): void {
    this.refill();
    this.rate = bytesPerSecond;
    this.tokens = Math.min(this.tokens, this.burst);
  }

  private get burst(): number {
    return Math.max(16 * 1024, this.rate / 10);
  }

  private refill(): void {
    const t = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.rate);
    this.last = t;
  }

  /** Milliseconds to wait before `n` bytes may pass; takes them (the balance may go negative). */
  reserve(n: number): number {
    this.refill();
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.rate) * 1000;
  }
}

/** Waits until every bucket lets `n` bytes through. */
export async function throttle(buckets: readonly (TokenBucket | null | undefined)[], n: number, signal?: AbortSignal): Promise<void> {
  let wait = 0;
  for (const b of buckets) if (b) wait = Math.max(wait, b.reserve(n));
  if (wait <= 0) return;
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, wait);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
