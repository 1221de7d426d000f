// The worker's side of the commands: claims, progress and outcome reports, lease release and the
// periodic sweeps (expired leases, no-progress timeouts, inactivity). Same shape as commands.ts:
// lock -> decide (src/domain) -> write with compare-and-set and append the JobEvent (src/store) ->
// after commit, poke the feed. Every report from a transfer carries its lease and is fenced: a worker
// that lost its lease gets LeaseLostError and writes nothing.
import type { Prisma, Job, File } from "../generated/prisma/client.js";
import { decide, isFinal, type JobEvent as DomainEvent } from "../domain/job-state.js";
import { appendEvents, type NewEvent, type Tx } from "../store/events.js";
import { lockJob, updateJob } from "../store/jobs.js";
import {
  assertLease,
  claimJobs,
  expiredActiveJobs,
  heartbeat,
  inactiveJobs,
  noProgressExpired,
  releaseLease,
  LeaseLostError,
} from "../store/claim.js";
import type { PrismaClient } from "../store/db.js";
import { applyPatch, patchToData, snapshotOf } from "./transition.js";
import { PROGRESS_CHANNEL, progressMessageOf } from "../events/progress.js";
import type { FileStorage } from "../files/storage.js";

export { LeaseLostError };

export interface Lease {
  holder: string;
  token: bigint;
}

export interface ClaimedJob {
  job: Job;
  files: File[];
  lease: Lease;
  /** A crashed holder's lease ran out: its temporary file may still be written by a zombie; take it over by copy. */
  takeover: boolean;
}

export interface FileProgress {
  id: string;
  bytesTransferred: bigint;
  bytesTotal?: bigint | null;
  transferred?: boolean;
  etag?: string | null;
  lastModified?: string | null;
  finalUrl?: string | null;
}

export interface ReportDeps {
  prisma: PrismaClient;
  /** to delete the temporary files of jobs the sweep cancels (the server always passes it) */
  storage?: FileStorage;
  afterCommit?: () => void;
  now?: () => Date;
}

const SYSTEM = null; // the actor of worker-driven events: the service itself

export function createReports(deps: ReportDeps) {
  const { prisma } = deps;
  const now = deps.now ?? (() => new Date());

  async function transact<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const r = await prisma.$transaction(fn, { timeout: 15_000, maxWait: 15_000 });
    deps.afterCommit?.();
    return r;
  }

  /** Chains events through the state machine on one row: the columns to write and the log entries. */
  function chain(job: Job, events: DomainEvent[], at: Date): { next: Job; logged: NewEvent[]; data: Prisma.JobUpdateManyMutationInput } {
    let cur = job;
    let data: Prisma.JobUpdateManyMutationInput = {};
    const logged: NewEvent[] = [];
    for (const ev of events) {
      const d = decide(snapshotOf(cur), ev, at);
      if (d.kind === "refused") throw new Error(`worker event ${ev.type} refused in ${cur.state}: ${d.message}`);
      data = { ...data, ...patchToData(d.patch) };
      const prev = cur.state;
      cur = { ...applyPatch(cur, d.patch), modifiedAt: at };
      if (d.kind === "transition") logged.push({ job: cur, kind: "STATE_CHANGED", previousState: prev, actor: SYSTEM });
    }
    return { next: cur, logged, data };
  }

  /** Recomputes the job's progress columns from its files (exact, whatever changed concurrently). */
  async function aggregate(tx: Tx, jobId: string): Promise<Prisma.JobUpdateManyMutationInput> {
    const rows = await tx.$queryRawUnsafe<{ files: number; done: number; unknown: boolean; total: bigint | null; moved: bigint | null }[]>(
      `SELECT count(*)::int AS files, count(*) FILTER (WHERE transferred)::int AS done,
              bool_or(bytes_total IS NULL) AS unknown, sum(bytes_total)::bigint AS total, sum(bytes_transferred)::bigint AS moved
         FROM file WHERE job_id = $1::uuid`,
      jobId,
    );
    const r = rows[0]!;
    return {
      filesTotal: r.files,
      filesTransferred: r.done,
      bytesTotal: r.unknown ? null : (r.total ?? 0n),
      bytesTransferred: r.moved ?? 0n,
    };
  }

  async function writeFiles(tx: Tx, files: readonly FileProgress[]): Promise<void> {
    for (const f of files) {
      await tx.file.update({
        where: { id: f.id },
        data: {
          bytesTransferred: f.bytesTransferred,
          ...(f.bytesTotal !== undefined ? { bytesTotal: f.bytesTotal } : {}),
          ...(f.transferred !== undefined ? { transferred: f.transferred } : {}),
          ...(f.etag !== undefined ? { etag: f.etag } : {}),
          ...(f.lastModified !== undefined ? { lastModified: f.lastModified } : {}),
          ...(f.finalUrl !== undefined ? { finalUrl: f.finalUrl } : {}),
        },
      });
    }
  }

  async function notifyProgress(tx: Tx, job: Job, rate: number): Promise<void> {
    const msg = progressMessageOf(job, rate);
    await tx.$executeRaw`SELECT pg_notify(${PROGRESS_CHANNEL}, ${JSON.stringify(msg)})`;
  }

  return {
    /**
     * Claims up to `limit` runnable jobs and moves each to CONNECTING (TRANSIENT_ERROR jobs first
     * back to QUEUED: RETRY_DUE), all in ONE transaction with all their events.
     */
    async claim(holder: string, limit: number, leaseSeconds: number, maxPriorityRank = 3): Promise<ClaimedJob[]> {
      if (limit <= 0) return [];
      return transact(async (tx) => {
        const claimed = await claimJobs(tx, holder, limit, leaseSeconds, maxPriorityRank);
        if (claimed.length === 0) return [];
        const rows = await tx.job.findMany({ where: { id: { in: claimed.map((c) => c.id) } } });
        const files = await tx.file.findMany({ where: { jobId: { in: claimed.map((c) => c.id) } }, orderBy: [{ jobId: "asc" }, { position: "asc" }] });
        const at = now();
        const out: ClaimedJob[] = [];
        const logged: NewEvent[] = [];
        for (const c of claimed) {
          const row = rows.find((r) => r.id === c.id)!;
          const events: DomainEvent[] = row.state === "TRANSIENT_ERROR" ? [{ type: "RETRY_DUE" }, { type: "START" }] : [{ type: "START" }];
          // The claim already checked retry_at against the database clock; never refuse on app/DB clock skew.
          const when = row.retryAt && row.retryAt > at ? row.retryAt : at;
          const { next, logged: l, data } = chain(row, events, when);
          const written = await updateJob(tx, row, { ...data, modifiedAt: at });
          logged.push(...l.map((e, i) => (i === l.length - 1 ? { ...e, job: written } : e)));
          out.push({
            job: { ...written, state: next.state },
            files: files.filter((f) => f.jobId === c.id),
            lease: { holder, token: c.leaseToken },
            takeover: c.previousHolder !== null,
          });
        }
        await appendEvents(tx, logged);
        return out;
      });
    },

    /**
     * A transfer's report: file progress and/or state events, fenced by the lease, in one
     * transaction. `release` gives the lease back in the same write (the attempt is over).
     */
    async report(
      jobId: string,
      lease: Lease,
      r: { events?: DomainEvent[]; files?: FileProgress[]; release?: boolean; rate?: number; notify?: boolean },
    ): Promise<Job> {
      return transact(async (tx) => {
        const before = await lockJob(tx, jobId);
        // A finished job (cancelled, completed) is read-only, even for the lease holder.
        if (!before || isFinal(before.state)) throw new LeaseLostError(jobId);
        assertLease(before, lease.holder, lease.token);
        const at = now();
        if (r.files?.length) await writeFiles(tx, r.files);
        const progress = r.files?.length ? await aggregate(tx, jobId) : {};
        const { logged, data } = chain({ ...before, ...(progress as Partial<Job>) }, r.events ?? [], at);
        const written = await updateJob(tx, before, {
          ...progress,
          ...data,
          modifiedAt: at,
          ...(r.release ? { leaseHolder: null, leaseExpiresAt: null } : {}),
        });
        if (logged.length) {
          logged[logged.length - 1] = { ...logged[logged.length - 1]!, job: written };
          await appendEvents(tx, logged);
        }
        if (r.files?.length && r.notify !== false) await notifyProgress(tx, written, r.rate ?? 0);
        return written;
      });
    },

    /** Renews leases; returns the ids whose lease is lost. */
    heartbeat(holder: string, leases: { id: string; token: bigint }[], leaseSeconds: number): Promise<string[]> {
      return prisma.$transaction((tx) => heartbeat(tx, holder, leases, leaseSeconds));
    },

    release(jobId: string, lease: Lease): Promise<void> {
      return prisma.$transaction((tx) => releaseLease(tx, jobId, lease.holder, lease.token));
    },

    /**
     * Sweeps that any process may run: jobs left active by a crashed holder go back to QUEUED
     * (their lease stays until it is claimed, so the claimer knows to take the file over);
     * TRANSIENT_ERROR jobs past their no-progress timeout go to ERROR; jobs inactive for
     * `inactivitySeconds` are cancelled. Returns the number of jobs changed.
     */
    async sweep(inactivitySeconds: number, leaseSeconds: number): Promise<number> {
      const cancelled: string[] = [];
      const changed = await transact(async (tx) => {
        const at = now();
        const logged: NewEvent[] = [];
        const apply = async (ids: { id: string }[], ev: DomainEvent) => {
          for (const { id } of ids) {
            const row = await tx.job.findUnique({ where: { id } });
            if (!row) continue;
            const d = decide(snapshotOf(row), ev, at);
            if (d.kind !== "transition") continue;
            const written = await updateJob(tx, row, { ...patchToData(d.patch), modifiedAt: at });
            logged.push({ job: written, kind: "STATE_CHANGED", previousState: row.state, actor: SYSTEM });
            if (d.effects.some((e) => e.type === "DELETE_TEMP_FILES")) cancelled.push(id);
          }
        };
        await apply(await expiredActiveJobs(tx, 100, leaseSeconds), { type: "YIELD" });
        await apply(await noProgressExpired(tx, 100), { type: "NO_PROGRESS_TIMEOUT" });
        await apply(await inactiveJobs(tx, inactivitySeconds, 100), { type: "INACTIVITY_TIMEOUT" });
        await appendEvents(tx, logged);
        return logged.length;
      });
      // After commit, as cancelJob does: the temporary files of cancelled jobs go.
      if (cancelled.length && deps.storage) {
        const files = await prisma.file.findMany({ where: { jobId: { in: cancelled } }, include: { job: { select: { owner: true } } } });
        for (const f of files) await deps.storage!.deleteTemps(f.job.owner, [f]);
      }
      return changed;
    },
  };
}

export type Reports = ReturnType<typeof createReports>;
