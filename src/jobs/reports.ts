// The worker's side of the commands: claims, progress and outcome reports, lease release and the
// periodic sweeps (expired leases, no-progress timeouts, inactivity). Same shape as commands.ts:
// lock -> decide (src/domain) -> write with compare-and-set and append the JobEvent (src/store) ->
// after commit, poke the feed. Every report from a transfer carries its lease and is fenced: a worker
// that lost its lease gets LeaseLostError and writes nothing.
import type { Prisma, Job, File } from "../generated/prisma/client.js";
import { decide, isFinal, type JobEvent as DomainEvent } from "../domain/job-state.js";
import { appendEvents, transactThenPoke, type NewEvent, type Tx } from "../store/events.js";
import { lockJobs, updateJob, updateJobs } from "../store/jobs.js";
import {
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
  afterCommit?: (seq: bigint) => void;
  now?: () => Date;
}

export interface ReportInput {
  events?: DomainEvent[];
  files?: FileProgress[];
  release?: boolean;
  rate?: number;
  notify?: boolean;
}

interface PendingReport {
  jobId: string;
  lease: Lease;
  r: ReportInput;
  resolve: (job: Job) => void;
  reject: (err: unknown) => void;
}

/** While busy, a group commit waits LINGER_MS for more reports if fewer than LINGER_BELOW are queued. */
const LINGER_MS = 4; // 0, 4 and 8 compared at 2,000 files: docs/performance.md
const LINGER_BELOW = 16;

/** Reports per group commit (more wait for the next one). */
const MAX_BATCH = 64;

const SYSTEM = null; // the actor of worker-driven events: the service itself

export function createReports(deps: ReportDeps) {
  const { prisma } = deps;
  const now = deps.now ?? (() => new Date());

  function transact<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return transactThenPoke(prisma, fn, deps.afterCommit);
  }

  /** Chains events through the state machine on one row: the columns to write and the log entries. */
  function chain(job: Job, events: DomainEvent[], at: Date): { next: Job; logged: NewEvent[]; data: Prisma.JobUpdateManyMutationInput } {
    let cur = job;
    let data: Prisma.JobUpdateManyMutationInput = {};
    const logged: NewEvent[] = [];
    for (const ev of events) {
      const d = decide(snapshotOf(cur), ev, at);
      // The job was stopped (suspended, yielded) after this report was made: its file rows are still
      // written (those bytes are on disk), its progress events no longer apply.
      if (d.kind === "refused" && (ev.type === "PROGRESS" || ev.type === "ALL_FILES_DONE") && cur.state !== "CONNECTING" && cur.state !== "TRANSFERRING") continue;
      if (d.kind === "refused") throw new Error(`worker event ${ev.type} refused in ${cur.state}: ${d.message}`);
      data = { ...data, ...patchToData(d.patch) };
      const prev = cur.state;
      cur = { ...applyPatch(cur, d.patch), modifiedAt: at };
      if (d.kind === "transition") logged.push({ job: cur, kind: "STATE_CHANGED", previousState: prev, actor: SYSTEM });
    }
    return { next: cur, logged, data };
  }

  /**
   * Writes every file row of the batch and recomputes the progress columns of their jobs from all
   * their files (exact, whatever changed concurrently), in one statement. A field left undefined
   * keeps its value. The aggregate reads the table as it was before the statement (one snapshot)
   * joined with the rows the UPDATE returned, so it counts the new values.
   */
  async function writeFileRows(tx: Tx, files: readonly FileProgress[]): Promise<Map<string, Partial<Job>>> {
    if (files.length === 0) return new Map();
    const has = (v: unknown) => v !== undefined;
    const json = JSON.stringify(
      files.map((f) => ({
        id: f.id,
        moved: f.bytesTransferred.toString(),
        set_total: has(f.bytesTotal),
        total: f.bytesTotal == null ? null : f.bytesTotal.toString(),
        set_done: has(f.transferred),
        done: f.transferred ?? null,
        set_etag: has(f.etag),
        etag: f.etag ?? null,
        set_lm: has(f.lastModified),
        lm: f.lastModified ?? null,
        set_url: has(f.finalUrl),
        url: f.finalUrl ?? null,
      })),
    );
    const rows = await tx.$queryRawUnsafe<{ job_id: string; files: number; done: number; unknown: boolean; total: bigint | null; moved: bigint | null }[]>(
      `WITH upd AS (
         UPDATE file f
            SET bytes_transferred = v.moved::bigint,
                bytes_total   = CASE WHEN v.set_total THEN v.total::bigint ELSE f.bytes_total END,
                transferred   = CASE WHEN v.set_done THEN v.done ELSE f.transferred END,
                etag          = CASE WHEN v.set_etag THEN v.etag ELSE f.etag END,
                last_modified = CASE WHEN v.set_lm THEN v.lm ELSE f.last_modified END,
                final_url     = CASE WHEN v.set_url THEN v.url ELSE f.final_url END
           FROM json_to_recordset($1::json) AS v(id uuid, moved text, set_total boolean, total text, set_done boolean, done boolean,
                                                 set_etag boolean, etag text, set_lm boolean, lm text, set_url boolean, url text)
          WHERE f.id = v.id
      RETURNING f.id, f.job_id, f.transferred, f.bytes_total, f.bytes_transferred
       )
       SELECT f.job_id::text AS job_id, count(*)::int AS files,
              count(*) FILTER (WHERE CASE WHEN u.id IS NULL THEN f.transferred ELSE u.transferred END)::int AS done,
              bool_or(CASE WHEN u.id IS NULL THEN f.bytes_total ELSE u.bytes_total END IS NULL) AS unknown,
              sum(CASE WHEN u.id IS NULL THEN f.bytes_total ELSE u.bytes_total END)::bigint AS total,
              sum(CASE WHEN u.id IS NULL THEN f.bytes_transferred ELSE u.bytes_transferred END)::bigint AS moved
         FROM file f LEFT JOIN upd u ON u.id = f.id
        WHERE f.job_id IN (SELECT DISTINCT job_id FROM upd)
        GROUP BY f.job_id`,
      json,
    );
    return new Map(
      rows.map((r) => [
        r.job_id,
        {
          filesTotal: r.files,
          filesTransferred: r.done,
          bytesTotal: r.unknown ? null : BigInt(r.total ?? 0n),
          bytesTransferred: BigInt(r.moved ?? 0n),
        },
      ]),
    );
  }

  // ---- group commit of the transfers' reports ---------------------------------------------------
  const queue: PendingReport[] = [];
  let flushing = false;
  let lastBatch = 0;

  /** One flush at a time; whatever queued meanwhile goes into the next one. */
  async function drain(): Promise<void> {
    try {
      while (queue.length) {
        // Busy (the last flush carried several reports) and few queued: wait a moment for the
        // reports that concurrent transfers are about to make, so that one transaction's fixed
        // statements serve more of them. Nobody waits on a file's report but for a job's last.
        if (lastBatch > 1 && queue.length < LINGER_BELOW) await new Promise((r) => setTimeout(r, LINGER_MS));
        // A job's reports are sequential (its transfer awaits each), but never put two of one job in
        // one batch: the second waits for the next flush.
        const batch: PendingReport[] = [];
        const seen = new Set<string>();
        for (let i = 0; i < queue.length && batch.length < MAX_BATCH; ) {
          const p = queue[i]!;
          if (seen.has(p.jobId)) {
            i++;
            continue;
          }
          seen.add(p.jobId);
          batch.push(p);
          queue.splice(i, 1);
        }
        lastBatch = batch.length;
        await flushReports(batch);
      }
    } finally {
      flushing = false;
      if (queue.length) {
        flushing = true;
        void drain();
      }
    }
  }

  async function flushReports(batch: PendingReport[]): Promise<void> {
    let outcome: Map<PendingReport, Job | Error>;
    try {
      // (progress-only flushes append no event: nothing for the event feed to read)
      outcome = await transact((tx) => writeReports(tx, batch));
    } catch (err) {
      if (batch.length === 1) {
        batch[0]!.reject(err);
        return;
      }
      // Something unexpected failed the shared transaction: retry each report on its own, so that
      // one bad report (or a conflict) costs only its own caller.
      for (const p of batch) await flushReports([p]);
      return;
    }
    for (const p of batch) {
      const o = outcome.get(p)!;
      if (o instanceof Error) p.reject(o);
      else p.resolve(o);
    }
  }

  /**
   * The reports of several jobs in one transaction: lock the rows (in id order: no deadlock with
   * another flusher), check every lease, write all file rows in one statement, re-aggregate the
   * touched jobs in one query, write each job (compare-and-set), append all events under one
   * event-log lock, and send the progress notifications in one statement.
   */
  async function writeReports(tx: Tx, batch: PendingReport[]): Promise<Map<PendingReport, Job | Error>> {
    const out = new Map<PendingReport, Job | Error>();
    const ids = batch.map((p) => p.jobId);
    const rows = await lockJobs(tx, ids);
    const ok: PendingReport[] = [];
    for (const p of batch) {
      const row = rows.get(p.jobId);
      // A finished job (cancelled, completed) is read-only, even for the lease holder.
      if (!row || isFinal(row.state) || row.leaseHolder !== p.lease.holder || row.leaseToken !== p.lease.token) {
        out.set(p, new LeaseLostError(p.jobId));
      } else ok.push(p);
    }
    if (ok.length === 0) return out;
    const at = now();
    const progress = await writeFileRows(tx, ok.flatMap((p) => p.r.files ?? []));
    const logged: NewEvent[] = [];
    const notices: string[] = [];
    const chained = ok.map((p) => {
      const before = rows.get(p.jobId)!;
      const agg = progress.get(p.jobId) ?? {};
      const { logged: l, data } = chain({ ...before, ...agg }, p.r.events ?? [], at);
      const write = {
        ...(agg as Prisma.JobUpdateManyMutationInput),
        ...data,
        modifiedAt: at,
        ...(p.r.release ? { leaseHolder: null, leaseExpiresAt: null } : {}),
      };
      return { p, before, l, write };
    });
    // Rows that get the same columns are written by one statement (compare-and-set still per row).
    const written = await updateJobs(
      tx,
      chained.map((c) => ({ expected: c.before, data: c.write })),
    );
    chained.forEach(({ p, l }, i) => {
      const job = written[i]!;
      if (l.length) l[l.length - 1] = { ...l[l.length - 1]!, job };
      logged.push(...l);
      if (p.r.files?.length && p.r.notify !== false) notices.push(JSON.stringify(progressMessageOf(job, p.r.rate ?? 0)));
      out.set(p, job);
    });
    await appendEvents(tx, logged);
    if (notices.length) {
      await tx.$executeRawUnsafe(`SELECT pg_notify($1, m) FROM json_array_elements_text($2::json) AS m`, PROGRESS_CHANNEL, JSON.stringify(notices));
    }
    return out;
  }

  return {
    /**
     * Claims runnable jobs and moves each to CONNECTING (TRANSIENT_ERROR jobs first back to QUEUED:
     * RETRY_DUE), all in ONE transaction with all their events. Each portion claims up to `limit`
     * jobs of rank `maxPriorityRank` or better (0 = FOREGROUND only), in the order given: the
     * worker's tick claims the FOREGROUND jobs and its free slots' worth in one transaction.
     */
    async claim(holder: string, leaseSeconds: number, portions: readonly { limit: number; maxPriorityRank: number }[]): Promise<ClaimedJob[]> {
      if (!portions.some((x) => x.limit > 0)) return [];
      return transact(async (tx) => {
        const claimed = [];
        for (const x of portions) claimed.push(...(await claimJobs(tx, holder, x.limit, leaseSeconds, x.maxPriorityRank)));
        if (claimed.length === 0) return [];
        const rows = claimed.map((c) => c.job);
        const files = await tx.file.findMany({ where: { jobId: { in: claimed.map((c) => c.id) } }, orderBy: [{ jobId: "asc" }, { position: "asc" }] });
        const at = now();
        const out: ClaimedJob[] = [];
        const logged: NewEvent[] = [];
        const byId = new Map(rows.map((r) => [r.id, r]));
        const chained = claimed.map((c) => {
          const row = byId.get(c.id)!;
          const events: DomainEvent[] = row.state === "TRANSIENT_ERROR" ? [{ type: "RETRY_DUE" }, { type: "START" }] : [{ type: "START" }];
          // The claim already checked retry_at against the database clock; never refuse on app/DB clock skew.
          const when = row.retryAt && row.retryAt > at ? row.retryAt : at;
          return { c, row, ...chain(row, events, when) };
        });
        const written = await updateJobs(
          tx,
          chained.map((x) => ({ expected: x.row, data: { ...x.data, modifiedAt: at } })),
        );
        chained.forEach(({ c, next, logged: l }, k) => {
          const w = written[k]!;
          logged.push(...l.map((e, i) => (i === l.length - 1 ? { ...e, job: w } : e)));
          out.push({
            job: { ...w, state: next.state },
            files: files.filter((f) => f.jobId === c.id),
            lease: { holder, token: c.leaseToken },
            takeover: c.previousHolder !== null,
          });
        });
        await appendEvents(tx, logged);
        return out;
      });
    },

    /**
     * A transfer's report: file progress and/or state events, fenced by the lease. `release` gives
     * the lease back in the same write (the attempt is over). Reports from concurrent transfers are
     * group-committed: every report queued while a flush is in flight goes into the next flush's
     * one transaction (see `flushReports`); each caller still gets its own result or error.
     */
    report(jobId: string, lease: Lease, r: ReportInput): Promise<Job> {
      return new Promise<Job>((resolve, reject) => {
        queue.push({ jobId, lease, r, resolve, reject });
        if (!flushing) {
          flushing = true;
          void drain();
        }
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
