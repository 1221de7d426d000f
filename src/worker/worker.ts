// The transfer worker: claims runnable jobs from the database, transfers their files in order, and
// reports every transition and progress through src/jobs/reports.ts. It never imports graphql/.
//
// Scheduling (BITS section 3):
//   - at most `maxTransfers` jobs at once, except FOREGROUND jobs, which always run;
//   - claims go highest priority first, oldest first within a priority (src/store/claim.ts);
//   - a waiting job of higher priority pre-empts the lowest-priority running job when no slot is
//     free: that job YIELDs back to QUEUED and resumes later at its offset;
//   - files inside a job go one at a time, in order.
// Control: the worker follows the committed event log (any process's commits). When a job it runs
// leaves CONNECTING/TRANSFERRING (suspend, cancel, complete), it aborts the HTTP transfer at once.
// Heartbeats renew its leases; a lease found lost aborts that transfer without writing anything.
import os from "node:os";
import path from "node:path";
import fs from "node:fs/promises";
import { randomBytes } from "node:crypto";
import type { Job, File } from "../generated/prisma/client.js";
import type { Reports, ClaimedJob, Lease, FileProgress } from "../jobs/reports.js";
import { LeaseLostError } from "../jobs/reports.js";
import type { EventFeed } from "../events/feed.js";
import type { FileStorage } from "../files/storage.js";
import type { Logger } from "../logger.js";
import { classify, toErrorInfo } from "../domain/retry-policy.js";
import { download, TransferFailure } from "../transfer/http.js";
import { TokenBucket } from "../transfer/throttle.js";
import type { AddressPolicy } from "../transfer/address-policy.js";
import { jobAtEvent } from "../store/events.js";
import type { JobEvent as DomainEvent } from "../domain/job-state.js";
import { activeTime } from "../domain/job-state.js";

export interface WorkerOptions {
  maxTransfers: number;
  leaseSeconds: number;
  maxBytesPerSecond: number | null;
  stallSeconds: number;
  inactivitySeconds: number;
  /** how often to sweep for expired leases and timeouts */
  sweepSeconds: number;
  /** minimum interval between progress writes per job */
  progressIntervalMs: number;
  maxRedirects: number;
  /** where transfers may connect (SSRF guard) */
  policy?: AddressPolicy;
}

export interface WorkerDeps {
  reports: Reports;
  feed: EventFeed;
  storage: FileStorage;
  logger: Logger;
  options: WorkerOptions;
  /** bytes written to disk by this process (metrics) */
  onBytes?: (n: number) => void;
}

const PRIORITY_RANK: Record<string, number> = { FOREGROUND: 0, HIGH: 1, NORMAL: 2, LOW: 3 };

type StopReason = "stopped" | "preempted" | "shutdown" | "lease-lost" | "timeout";

interface Running {
  job: Job;
  lease: Lease;
  abort: AbortController;
  reason: StopReason | null;
  /** the job row's version written by the claim: older events are not news */
  claimedVersion: number;
  /** the state the job was moved to when it was stopped from outside */
  stoppedState: string | null;
  bucket: TokenBucket | null;
  done: Promise<void>;
}

export class Worker {
  readonly holder = `${os.hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
  private readonly running = new Map<string, Running>();
  private readonly global: TokenBucket | null;
  private stopped = false;
  private ticking: Promise<void> | null = null;
  private again = false;
  private timers: NodeJS.Timeout[] = [];
  private sub: AsyncIterableIterator<unknown> & { close?: () => void } | null = null;
  private lastSweep = 0;

  constructor(private readonly deps: WorkerDeps) {
    const rate = deps.options.maxBytesPerSecond;
    this.global = rate ? new TokenBucket(rate) : null;
  }

  get activeJobs(): number {
    return this.running.size;
  }

  start(): void {
    const o = this.deps.options;
    this.followEvents();
    this.timers.push(setInterval(() => this.poke(), 1000));
    this.timers.push(setInterval(() => void this.heartbeat(), Math.max(1000, (o.leaseSeconds * 1000) / 3)));
    for (const t of this.timers) t.unref();
    this.poke();
  }

  /** Stop claiming, stop every transfer (checkpointed, back to QUEUED), release leases. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.sub?.close?.();
    await this.ticking?.catch(() => {});
    for (const r of this.running.values()) this.abort(r, "shutdown");
    await Promise.allSettled([...this.running.values()].map((r) => r.done));
  }

  /** Look for work now (coalesced). */
  poke(): void {
    if (this.stopped) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = this.tick()
      .catch((err) => this.deps.logger.warn({ err }, "worker tick failed"))
      .finally(() => {
        this.ticking = null;
        if (this.again && !this.stopped) {
          this.again = false;
          this.poke();
        }
      });
  }

  private abort(r: Running, reason: StopReason): void {
    if (r.reason) return;
    r.reason = reason;
    r.abort.abort(new Error(`transfer stopped: ${reason}`));
  }

  /** Follows committed events: stop transfers whose job left the active states; wake on new work. */
  private followEvents(): void {
    const sub = this.deps.feed.subscribe({ kinds: new Set(["STATE_CHANGED", "PROPERTIES_CHANGED", "CREATED", "OWNER_CHANGED"]) });
    this.sub = sub;
    void (async () => {
      for await (const ev of sub) {
        const r = this.running.get(ev.jobId);
        // Only events newer than this worker's claim count (the claim's own RETRY_DUE -> QUEUED
        // event, for one, arrives after the transfer has started).
        const version = jobAtEvent(ev)?.version;
        if (r && (version === undefined || version > r.claimedVersion)) {
          if (ev.state !== "CONNECTING" && ev.state !== "TRANSFERRING") {
            r.stoppedState = ev.state;
            this.abort(r, "stopped");
          } else if (ev.kind === "OWNER_CHANGED") {
            this.abort(r, "preempted"); // yield: the next attempt runs with the new owner's paths and options
          } else if (ev.kind === "PROPERTIES_CHANGED") {
            const job = jobAtEvent(ev);
            if (job) this.applyProperties(r, job);
          }
        }
        if (ev.state === "QUEUED") this.poke();
      }
    })().catch((err) => this.deps.logger.warn({ err }, "worker event follower stopped"));
  }

  private applyProperties(r: Running, job: Job): void {
    const rate = job.maxBytesPerSecond === null ? null : Number(job.maxBytesPerSecond);
    if (rate === null) r.bucket = null;
    else if (r.bucket) r.bucket.setRate(rate);
    else r.bucket = new TokenBucket(rate);
    r.job = { ...r.job, priority: job.priority, maxBytesPerSecond: job.maxBytesPerSecond };
  }

  private async heartbeat(): Promise<void> {
    if (this.running.size === 0) return;
    const leases = [...this.running.values()].map((r) => ({ id: r.job.id, token: r.lease.token }));
    try {
      const lost = await this.deps.reports.heartbeat(this.holder, leases, this.deps.options.leaseSeconds);
      for (const id of lost) {
        const r = this.running.get(id);
        if (r) this.abort(r, "lease-lost");
      }
    } catch (err) {
      this.deps.logger.warn({ err }, "lease heartbeat failed");
    }
  }

  private async tick(): Promise<void> {
    const o = this.deps.options;
    const { reports } = this.deps;
    if (Date.now() - this.lastSweep >= o.sweepSeconds * 1000) {
      this.lastSweep = Date.now();
      await reports.sweep(o.inactivitySeconds, o.leaseSeconds).catch((err) => this.deps.logger.warn({ err }, "sweep failed"));
      this.checkMaxDownloadTime();
    }
    if (this.stopped) return;
    // FOREGROUND jobs always run (they take no slot); then the free slots are filled, highest
    // priority first: both in one claim transaction. With no free slot, a waiting job of a better
    // priority may pre-empt a running one.
    const FOREGROUND = { limit: 64, maxPriorityRank: 0 };
    const background = [...this.running.values()].filter((r) => r.job.priority !== "FOREGROUND").length;
    const free = o.maxTransfers - background;
    if (free > 0) {
      for (const c of await reports.claim(this.holder, o.leaseSeconds, [FOREGROUND, { limit: free, maxPriorityRank: 3 }])) this.run(c);
    } else {
      for (const c of await reports.claim(this.holder, o.leaseSeconds, [FOREGROUND])) this.run(c);
      if (!this.stopped) await this.preempt();
    }
  }

  /**
   * No free slot: if a waiting job outranks the lowest-priority running one, the waiting one is
   * claimed (into the slot) and the running one yields.
   */
  private async preempt(): Promise<void> {
    const running = [...this.running.values()].filter((r) => r.job.priority !== "FOREGROUND" && !r.reason);
    if (running.length === 0) return;
    const worst = running.reduce((a, b) => (PRIORITY_RANK[a.job.priority]! >= PRIORITY_RANK[b.job.priority]! ? a : b));
    const worstRank = PRIORITY_RANK[worst.job.priority]!;
    if (worstRank === 0) return;
    // Is anything better waiting? Claim it directly: one slot, ranks strictly better than the worst.
    const better = await this.deps.reports.claim(this.holder, this.deps.options.leaseSeconds, [{ limit: 1, maxPriorityRank: worstRank - 1 }]);
    if (better.length === 0) return;
    this.abort(worst, "preempted");
    for (const c of better) this.run(c);
  }

  private checkMaxDownloadTime(): void {
    const now = new Date();
    for (const r of this.running.values()) {
      // Only time in CONNECTING/TRANSFERRING since the last Resume counts (job-state.ts header note [7]).
      const active = activeTime({ activeSeconds: r.job.activeSeconds, activeSince: r.job.activeSince }, now);
      if (active >= r.job.maximumDownloadTime) this.abort(r, "timeout");
    }
  }

  private run(c: ClaimedJob): void {
    const old = this.running.get(c.job.id);
    if (old) {
      // This process lost the job's lease (a long stall) and has just claimed it again before the
      // old attempt finished stopping: stop it and start the new attempt only after it has ended.
      this.abort(old, "lease-lost");
      void old.done.then(() => this.run(c));
      return;
    }
    const rate = c.job.maxBytesPerSecond === null ? null : Number(c.job.maxBytesPerSecond);
    const r: Running = {
      job: c.job,
      lease: c.lease,
      abort: new AbortController(),
      reason: null,
      claimedVersion: c.job.version,
      stoppedState: null,
      bucket: rate ? new TokenBucket(rate) : null,
      done: Promise.resolve(),
    };
    this.running.set(c.job.id, r);
    r.done = this.transferJob(r, c)
      .catch((err) => this.deps.logger.error({ err, jobId: c.job.id }, "worker failed to finish a job"))
      .finally(() => {
        if (this.running.get(c.job.id) === r) this.running.delete(c.job.id);
        this.poke();
      });
  }

  private async transferJob(r: Running, c: ClaimedJob): Promise<void> {
    const { reports, storage, logger } = this.deps;
    const o = this.deps.options;
    const job = c.job;
    const files = c.files;
    let state: "CONNECTING" | "TRANSFERRING" = "CONNECTING";
    let currentFile: File | null = null;
    const log = logger.child({ jobId: job.id });
    log.debug("transfer started");

    const headers: Record<string, string> = {};
    for (const h of (job.httpHeaders as { name: string; value: string }[] | null) ?? []) headers[h.name] = h.value;
    const cred = job.httpCredentials as { username: string; password: string } | null;
    if (cred) headers.authorization = `Basic ${Buffer.from(`${cred.username}:${cred.password}`).toString("base64")}`;

    let lastReport = { at: performance.now(), bytes: job.bytesTransferred };
    const rateOf = (bytes: bigint) => {
      const t = performance.now();
      const rate = t > lastReport.at ? (Number(bytes - lastReport.bytes) * 1000) / (t - lastReport.at) : 0;
      lastReport = { at: t, bytes };
      return Math.max(0, rate);
    };
    // Progress is persisted at every checkpoint, pushed to subscribers at most every
    // progressIntervalMs and at every file boundary.
    let lastPush = 0;
    // Reports of one attempt go to the database strictly one after another (each waits for the one
    // before it to commit), but the worker need not wait for a file's final report: it is committed
    // while the next file is fetched (its bytes are already durable). Each file still gets its own
    // report, so subscribers see every file boundary. Once a report fails, every later one fails
    // with the same error (never TRANSFERRED over a file whose report was lost); a lost lease stops
    // the attempt at once.
    // A report nobody waits for is `lazy` (it may wait a little for others to share its
    // transaction); any other report first hurries this job's lazy ones, which it queues behind.
    type Report = { events?: DomainEvent[]; files?: FileProgress[]; release?: boolean; lazy?: boolean };
    let tail: Promise<unknown> = Promise.resolve();
    let failed: unknown = null;
    const report = (x: Report): Promise<unknown> => {
      if (!x.lazy) reports.hurry(job.id);
      const p = tail.then(() => {
        if (failed) throw failed;
        return send(x);
      });
      tail = p.catch((err) => {
        failed ??= err;
        if (err instanceof LeaseLostError) this.abort(r, "lease-lost");
      });
      return p;
    };
    const send = (x: Report) => {
      let notify = false;
      let rate = 0;
      if (x.files) {
        const boundary = x.files.some((f) => f.transferred);
        notify = boundary || performance.now() - lastPush >= o.progressIntervalMs - 20;
        if (notify) {
          rate = rateOf(jobBytes);
          lastPush = performance.now();
        }
      }
      return reports.report(job.id, r.lease, { ...x, rate, notify });
    };
    let finished = false; // the last file's report moved the job to TRANSFERRED
    let jobBytes = files.reduce((sum, x) => sum + x.bytesTransferred, 0n); // as of the last checkpoint
    let filesDone = files.filter((x) => x.transferred).length;

    const readyDirs = new Set<string>();
    try {
      for (const f of files) {
        if (f.transferred) continue;
        currentFile = f;
        const tempPath = storage.tempPath(job.owner, f);
        // The destination's directory: created and checked for symbolic links once per attempt (the
        // files of a job often share one); completeJob checks every path again before its rename.
        const dir = path.posix.dirname(f.localPath);
        if (!readyDirs.has(dir)) {
          await storage.assertNoSymlink(job.owner, f.localPath).then(
            () => storage.ensureDir(job.owner, f.localPath),
          ).catch((err) => {
            throw new TransferFailure({ kind: "local", code: "ELOOP", path: f.localPath, message: (err as Error).message });
          });
          readyDirs.add(dir);
        }
        if (c.takeover && f.bytesTransferred > 0n) await takeOverTempFile(tempPath, f.bytesTransferred);
        await download(
          { url: f.remoteUrl, tempPath, offset: f.bytesTransferred, etag: f.etag, lastModified: f.lastModified, sha256: f.sha256 },
          {
            signal: r.abort.signal,
            headers,
            buckets: () => [this.global, r.bucket],
            stallSeconds: o.stallSeconds,
            maxRedirects: o.maxRedirects,
            checkpointMs: o.progressIntervalMs,
            checkpointFraction: 25, // a crash costs at most about 4% of a file (or 1 MiB)
            policy: o.policy,
            onConnected: async () => {
              // Queued, not awaited: the body streams while CONNECTING -> TRANSFERRING commits. The
              // report chain still commits it before any later report of this attempt, and if it
              // fails every later report fails too (the job never moves on without it).
              if (state === "CONNECTING") {
                void report({ events: [{ type: "CONNECTED" }], lazy: true });
                state = "TRANSFERRING";
              }
            },
            checkpoint: async (cp) => {
              if (r.stoppedState === "CANCELLED" || r.stoppedState === "ACKNOWLEDGED") return; // finished: nothing to keep
              if (cp.bytesTransferred > f.bytesTransferred) this.deps.onBytes?.(Number(cp.bytesTransferred - f.bytesTransferred));
              jobBytes += cp.bytesTransferred - f.bytesTransferred;
              f.bytesTransferred = cp.bytesTransferred;
              const moved = !r.reason && state === "TRANSFERRING";
              // The job's last file is done: its final report also moves the job to TRANSFERRED and
              // gives the lease back (one write instead of two).
              const last = cp.done && moved && filesDone === files.length - 1;
              const fp: FileProgress = {
                id: f.id,
                bytesTransferred: cp.bytesTransferred,
                bytesTotal: cp.bytesTotal,
                transferred: cp.done,
                etag: cp.etag,
                lastModified: cp.lastModified,
                finalUrl: cp.finalUrl,
              };
              const sent = report({
                events: moved ? (last ? [{ type: "PROGRESS" }, { type: "ALL_FILES_DONE" }] : [{ type: "PROGRESS" }]) : [],
                ...(last ? { release: true } : {}),
                files: [fp],
                lazy: cp.done && !last,
              });
              if (!cp.done || last) await sent; // else committed in the background (see `report`)
              if (cp.done && !f.transferred) {
                f.transferred = true;
                filesDone++;
              }
              if (last) finished = true;
            },
          },
        );
      }
      if (!finished) {
        if (state === "CONNECTING") await report({ events: [{ type: "CONNECTED" }] }); // every file was already there
        await report({ events: [{ type: "ALL_FILES_DONE" }], release: true });
      }
      await tail;
      if (failed) throw failed;
      log.debug("transfer finished");
    } catch (err) {
      reports.hurry(job.id);
      await tail; // the failure is reported after what came before it
      await this.finish(r, failed ?? err, currentFile, state);
    }
  }

  /** The attempt ended early: report why, release the lease, clean up after cancel/complete. */
  private async finish(r: Running, err: unknown, file: File | null, state: "CONNECTING" | "TRANSFERRING"): Promise<void> {
    const { reports, storage, logger } = this.deps;
    const job = r.job;
    if (err instanceof LeaseLostError || r.reason === "lease-lost") {
      logger.warn({ jobId: job.id }, "lease lost; attempt abandoned");
      return; // not ours any more: write nothing
    }
    try {
      if (r.reason === "stopped") {
        // The job was suspended, cancelled or completed (by any process): its state is already
        // committed. Release the lease; after cancel/complete, remove what this attempt may have
        // (re)created, since the command's own clean-up may have run before the transfer stopped.
        await reports.release(job.id, r.lease);
        if ((r.stoppedState === "CANCELLED" || r.stoppedState === "ACKNOWLEDGED") && file && !file.transferred) {
          await fs.rm(storage.tempPath(job.owner, file), { force: true }).catch(() => {});
        }
        return;
      }
      if (r.reason === "preempted" || r.reason === "shutdown") {
        await reports.report(job.id, r.lease, { events: [{ type: "YIELD" }], release: true });
        return;
      }
      if (r.reason === "timeout") {
        await reports.report(job.id, r.lease, { events: [{ type: "MAX_DOWNLOAD_TIME_EXCEEDED" }], release: true });
        return;
      }
      const failure =
        err instanceof TransferFailure ? err.failure : { kind: "unknown" as const, message: err instanceof Error ? err.message : String(err) };
      const c = classify(failure, new Date());
      const error = toErrorInfo(c, file?.id ?? null);
      logger.info({ jobId: job.id, code: c.code, transient: c.transient, state }, "transfer failed");
      await reports.report(job.id, r.lease, {
        events: [c.transient ? { type: "TRANSIENT_FAILURE", error, retryAfterSeconds: c.retryAfterSeconds ?? undefined } : { type: "FATAL_FAILURE", error }],
        release: true,
      });
    } catch (e) {
      if (e instanceof LeaseLostError) return;
      logger.error({ err: e, jobId: job.id }, "could not report the end of a transfer");
      await reports.release(job.id, r.lease).catch(() => {});
    }
  }
}

/**
 * A crashed holder's lease ran out and this worker claimed the job. If that holder is in fact alive
 * (a long pause), it may still write to the temporary file for a moment. Move the file aside and
 * continue from a private copy of the acknowledged prefix: whatever the zombie writes goes to the
 * old inode, never into ours.
 */
async function takeOverTempFile(tempPath: string, bytes: bigint): Promise<void> {
  const aside = `${tempPath}.stale-${process.pid}-${Date.now()}`;
  try {
    if (!(await fs.lstat(tempPath)).isFile()) {
      await fs.rm(tempPath, { force: true }); // not ours (a link?): start that file afresh
      return;
    }
    await fs.rename(tempPath, aside);
  } catch {
    return; // nothing there: the download restarts from the persisted offset anyway
  }
  try {
    await fs.copyFile(aside, tempPath);
    await fs.truncate(tempPath, Number(bytes));
  } finally {
    await fs.rm(aside, { force: true });
  }
}
