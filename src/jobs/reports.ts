// The worker's side of the commands: claims, progress and outcome reports, lease release and the
// periodic sweeps (expired leases, no-progress timeouts, inactivity). Same shape as commands.ts:
// lock -> decide (src/domain) -> write with compare-and-set and append the JobEvent (src/store) ->
// after commit, poke the feed. Every report from a transfer carries its lease and is fenced: a worker
// that lost its lease gets LeaseLostError and writes nothing.
import type { Prisma, Job, File } from "../generated/prisma/client.js";
import { decide, FINAL_STATES, isFinal, type JobEvent as DomainEvent } from "../domain/job-state.js";
import { appendEvents, appendEventsSql, appendedSeqOf, transactThenPoke, type NewEvent, type Tx } from "../store/events.js";
import { jobFromDriverRow, jobRowSql, updateJob, updateJobsScript } from "../store/jobs.js";
import {
  claimJobsScript,
  expiredActiveJobs,
  heartbeat,
  inactiveJobs,
  noProgressExpired,
  releaseLease,
  LeaseLostError,
} from "../store/claim.js";
import { sqlLiteral, type Database, type ScriptTx } from "../store/db.js";
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
  /** the database: Prisma for claims and sweeps, driver transactions for the group commit */
  db: Pick<Database, "prisma" | "transaction">;
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
  /**
   * Nobody waits for this report (a finished file that is not the job's last, CONNECTED while the
   * body streams): it may wait up to LAZY_MS for other reports to share its transaction. Anything
   * urgent queued meanwhile (or `hurry`) takes it along at once.
   */
  lazy?: boolean;
}

interface PendingReport {
  jobId: string;
  lease: Lease;
  r: ReportInput;
  at: number;
  resolve: (job: Job) => void;
  reject: (err: unknown) => void;
}

/** While busy, a group commit waits LINGER_MS for more reports if fewer than LINGER_BELOW are queued. */
const LINGER_MS = 4; // 0, 4 and 8 compared at 2,000 files: docs/performance.md
const LINGER_BELOW = 16;
/** How long a lazy report may wait for company (see ReportInput.lazy). */
const LAZY_MS = 25;

/** Reports per group commit (more wait for the next one). */
const MAX_BATCH = 64;

const SYSTEM = null; // the actor of worker-driven events: the service itself

/** The final states as an SQL list (a finished job is read-only, even for its lease holder). */
const FINAL_SQL = [...FINAL_STATES].map((x) => `'${x}'`).join(", ");

export function createReports(deps: ReportDeps) {
  const { prisma } = deps.db;
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
   * The first statement of a group commit: locks the batch's job rows (in id order: concurrent
   * flushes never deadlock) and reads them; writes the file rows of the jobs whose lease still
   * holds (the same test as `leaseHolds`, in SQL); and recomputes the progress columns of those jobs
   * from all their files (exact, whatever changed concurrently). The aggregate reads the table as
   * it was before the statement (one snapshot) joined with the rows the UPDATE returned, so it
   * counts the new values. A file field left undefined keeps its value. Returns one row per job:
   * the job (jobRowSql) and, when its files were written, the aggregate (`_files`, `_done`, ...).
   */
  function lockAndWriteFilesSql(batch: readonly PendingReport[]): string {
    const has = (v: unknown) => v !== undefined;
    const leases = batch.map((p) => ({ id: p.jobId, holder: p.lease.holder, token: p.lease.token.toString() }));
    const files = batch.flatMap((p) =>
      (p.r.files ?? []).map((f) => ({
        id: f.id,
        job: p.jobId,
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
    return `WITH r AS (SELECT * FROM json_to_recordset(${sqlLiteral(JSON.stringify(leases))}::json) AS r(id uuid, holder text, token text)),
       locked AS (SELECT job.* FROM job WHERE job.id IN (SELECT id FROM r) ORDER BY job.id FOR UPDATE),
       ok AS (SELECT l.id FROM locked l JOIN r ON r.id = l.id
               WHERE l.lease_holder = r.holder AND l.lease_token = r.token::bigint AND l.state::text NOT IN (${FINAL_SQL})),
       upd AS (
         UPDATE file f
            SET bytes_transferred = v.moved::bigint,
                bytes_total   = CASE WHEN v.set_total THEN v.total::bigint ELSE f.bytes_total END,
                transferred   = CASE WHEN v.set_done THEN v.done ELSE f.transferred END,
                etag          = CASE WHEN v.set_etag THEN v.etag ELSE f.etag END,
                last_modified = CASE WHEN v.set_lm THEN v.lm ELSE f.last_modified END,
                final_url     = CASE WHEN v.set_url THEN v.url ELSE f.final_url END
           FROM json_to_recordset(${sqlLiteral(JSON.stringify(files))}::json) AS v(id uuid, job uuid, moved text, set_total boolean, total text,
                set_done boolean, done boolean, set_etag boolean, etag text, set_lm boolean, lm text, set_url boolean, url text)
          WHERE f.id = v.id AND f.job_id = v.job AND v.job IN (SELECT id FROM ok)
      RETURNING f.id, f.job_id, f.transferred, f.bytes_total, f.bytes_transferred
       ),
       agg AS (
         SELECT f.job_id, count(*)::int AS files,
                count(*) FILTER (WHERE CASE WHEN u.id IS NULL THEN f.transferred ELSE u.transferred END)::int AS done,
                bool_or(CASE WHEN u.id IS NULL THEN f.bytes_total ELSE u.bytes_total END IS NULL) AS unknown,
                sum(CASE WHEN u.id IS NULL THEN f.bytes_total ELSE u.bytes_total END)::text AS total,
                sum(CASE WHEN u.id IS NULL THEN f.bytes_transferred ELSE u.bytes_transferred END)::text AS moved
           FROM file f LEFT JOIN upd u ON u.id = f.id
          WHERE f.job_id IN (SELECT DISTINCT job_id FROM upd)
          GROUP BY f.job_id
       )
SELECT ${jobRowSql("locked")}, agg.job_id IS NOT NULL AS "_agg", agg.files AS "_files", agg.done AS "_done",
       agg.unknown AS "_unknown", agg.total AS "_total", agg.moved AS "_moved"
  FROM locked LEFT JOIN agg ON agg.job_id = locked.id`;
  }

  /** Whether the report's lease still holds on the locked row (a finished job is read-only, even for its holder). */
  function leaseHolds(row: Job | undefined, lease: Lease): boolean {
    return !!row && !isFinal(row.state) && row.leaseHolder === lease.holder && row.leaseToken === lease.token;
  }

  // ---- group commit of the transfers' reports ---------------------------------------------------
  const queue: PendingReport[] = [];
  let flushing = false;
  let lastBatch = 0;
  /** Ends the wait of a drain that holds only lazy reports (something urgent came). */
  let wake: (() => void) | null = null;
  const urgentQueued = () => queue.length >= LINGER_BELOW || queue.some((p) => !p.r.lazy);

  /** Only lazy reports queued: wait until the oldest has waited LAZY_MS, or until woken. */
  function lazyWait(): Promise<void> | null {
    if (urgentQueued()) return null;
    const left = LAZY_MS - (performance.now() - queue[0]!.at); // the queue is in arrival order
    if (left <= 0) return null;
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, left);
      function done() {
        clearTimeout(t);
        wake = null;
        resolve();
      }
      wake = done;
    });
  }

  /** One flush at a time; whatever queued meanwhile goes into the next one. */
  async function drain(): Promise<void> {
    let first = true;
    try {
      while (queue.length) {
        const waiting = lazyWait();
        if (waiting) await waiting;
        // Busy (the last flush carried several reports, or reports arrived while the previous
        // flush of this drain was in flight) and few queued: wait a moment for the reports that
        // concurrent transfers are about to make, so that one transaction's fixed statements serve
        // more of them. Nobody waits on a file's report but for a job's last; a lone report (a
        // single transfer's checkpoint) is flushed at once.
        else if ((lastBatch > 1 || !first) && queue.length < LINGER_BELOW) await new Promise((r) => setTimeout(r, LINGER_MS));
        first = false;
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
      // Three round trips: BEGIN + lock/files, the job rows, events/NOTIFYs + COMMIT.
      let seq: bigint | null = null;
      outcome = await deps.db.transaction(async (tx) => {
        const r = await writeReports(tx, batch);
        seq = r.seq;
        return r.out;
      });
      // (progress-only flushes append no event: nothing for the event feed to read)
      if (seq !== null) deps.afterCommit?.(seq);
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
   * The reports of several jobs in one driver transaction, in three messages: (1) BEGIN, lock and
   * read the job rows in id order, write the file rows of the jobs whose lease holds and
   * re-aggregate them (lockAndWriteFilesSql); (2) write each job (one compare-and-set statement
   * per set of columns); (3) append all events under the event-log lock, send the progress
   * NOTIFYs, COMMIT. A report whose lease is lost gets LeaseLostError and writes nothing.
   */
  async function writeReports(tx: ScriptTx, batch: PendingReport[]): Promise<{ out: Map<PendingReport, Job | Error>; seq: bigint | null }> {
    const out = new Map<PendingReport, Job | Error>();
    const [locked] = await tx.script(lockAndWriteFilesSql(batch));
    const rows = new Map<string, { job: Job; agg: Partial<Job> }>();
    for (const r of locked!) {
      const job = jobFromDriverRow(r);
      const agg: Partial<Job> = r._agg
        ? {
            filesTotal: Number(r._files),
            filesTransferred: Number(r._done),
            bytesTotal: r._unknown ? null : BigInt((r._total as string | null) ?? 0),
            bytesTransferred: BigInt((r._moved as string | null) ?? 0),
          }
        : {};
      rows.set(job.id, { job, agg });
    }
    const ok: PendingReport[] = [];
    for (const p of batch) {
      if (leaseHolds(rows.get(p.jobId)?.job, p.lease)) ok.push(p);
      else out.set(p, new LeaseLostError(p.jobId));
    }
    if (ok.length === 0) return { out, seq: null };
    const at = now();
    const logged: NewEvent[] = [];
    const notices: string[] = [];
    const chained = ok.map((p) => {
      const { job: before, agg } = rows.get(p.jobId)!;
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
    const written = await updateJobsScript(
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
    const tail = logged.length ? appendEventsSql(logged) : [];
    if (notices.length) {
      tail.push(`SELECT pg_notify(${sqlLiteral(PROGRESS_CHANNEL)}, m) FROM json_array_elements_text(${sqlLiteral(JSON.stringify(notices))}::json) AS m`);
    }
    let seq: bigint | null = null;
    if (tail.length) {
      const results = await tx.script(tail.join(";\n"), { commit: true });
      if (logged.length) seq = appendedSeqOf(results);
    }
    return { out, seq };
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
      // Through the driver, as the group commit: BEGIN + the claim statements (rows and files),
      // the job rows, events + COMMIT: three round trips (two when nothing was claimed).
      let seq: bigint | null = null;
      const out = await deps.db.transaction(async (tx) => {
        const claimed = await claimJobsScript(tx, holder, leaseSeconds, portions);
        if (claimed.length === 0) return [];
        const at = now();
        const result: ClaimedJob[] = [];
        const logged: NewEvent[] = [];
        const chained = claimed.map((c) => {
          const row = c.job;
          const events: DomainEvent[] = row.state === "TRANSIENT_ERROR" ? [{ type: "RETRY_DUE" }, { type: "START" }] : [{ type: "START" }];
          // The claim already checked retry_at against the database clock; never refuse on app/DB clock skew.
          const when = row.retryAt && row.retryAt > at ? row.retryAt : at;
          return { c, row, ...chain(row, events, when) };
        });
        const written = await updateJobsScript(
          tx,
          chained.map((x) => ({ expected: x.row, data: { ...x.data, modifiedAt: at } })),
        );
        chained.forEach(({ c, next, logged: l }, k) => {
          const w = written[k]!;
          logged.push(...l.map((e, i) => (i === l.length - 1 ? { ...e, job: w } : e)));
          result.push({
            job: { ...w, state: next.state },
            files: c.files,
            lease: { holder, token: c.leaseToken },
            takeover: c.previousHolder !== null,
          });
        });
        seq = appendedSeqOf(await tx.script(appendEventsSql(logged).join(";\n"), { commit: true }));
        return result;
      });
      if (seq !== null) deps.afterCommit?.(seq);
      return out;
    },

    /**
     * A transfer's report: file progress and/or state events, fenced by the lease. `release` gives
     * the lease back in the same write (the attempt is over). Reports from concurrent transfers are
     * group-committed: every report queued while a flush is in flight goes into the next flush's
     * one transaction (see `flushReports`); each caller still gets its own result or error.
     */
    report(jobId: string, lease: Lease, r: ReportInput): Promise<Job> {
      return new Promise<Job>((resolve, reject) => {
        queue.push({ jobId, lease, r, at: performance.now(), resolve, reject });
        if (!flushing) {
          flushing = true;
          void drain();
        } else if (wake && urgentQueued()) wake();
      });
    },

    /** The job's queued reports are needed now (its transfer is about to wait for a later one). */
    hurry(jobId: string): void {
      let found = false;
      for (const p of queue) {
        if (p.jobId === jobId && p.r.lazy) {
          p.r = { ...p.r, lazy: false };
          found = true;
        }
      }
      if (found) wake?.();
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
