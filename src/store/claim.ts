// Every statement of the worker's claim/lease/reclaim protocol, in one file.
//
// A lease is (holder, expiry, token) on the job row:
//   - holder: the worker process instance ("<host>:<pid>:<random>"),
//   - expiry: renewed by the holder's heartbeat; a crashed holder's lease simply runs out,
//   - token: the fencing token, +1 at every claim. Every write a worker makes for a job (progress,
//     state, file validators) goes through `assertLease`, which compares the token under the row
//     lock: a worker whose lease was lost can never write over a newer attempt.
// A job is claimable when it is runnable (QUEUED, or TRANSIENT_ERROR whose retry time has come) and
// nobody holds it (no holder, or the lease has expired). A worker that stops a transfer releases
// the lease; until it does, even a resumed job is not claimed elsewhere, so two workers never write
// one temporary file at once.
import type { File, Job } from "../generated/prisma/client.js";
import type { Tx } from "./events.js";
import { jobFromDriverRow, jobRowSql } from "./jobs.js";
import { sqlLiteral, type ScriptTx } from "./db.js";

export interface Claimed {
  id: string;
  leaseToken: bigint;
  /** the whole row as the claim left it (lease taken) */
  job: Job;
  /** The previous holder if its lease ran out without being released (a crash, or a stall of this very process): its temporary file must be taken over, not shared. */
  previousHolder: string | null;
}

/**
 * Claims up to `limit` runnable jobs, highest priority first (the enum's order is FOREGROUND, HIGH,
 * NORMAL, LOW), oldest first within a priority. SKIP LOCKED: concurrent claimers get different jobs.
 * `minPriorityRank` restricts the claim to priorities at or above a rank (0 = FOREGROUND).
 */
export async function claimJobs(tx: Tx, holder: string, limit: number, leaseSeconds: number, maxPriorityRank = 3): Promise<Claimed[]> {
  if (limit <= 0) return [];
  const rows = await tx.$queryRawUnsafe<(Job & { previousHolder: string | null })[]>(claimSql(["$1", "$2", "$3", "$4"]), holder, limit, leaseSeconds, worstAllowed(maxPriorityRank));
  return rows.map(({ previousHolder, ...job }) => ({ id: job.id, leaseToken: job.leaseToken, previousHolder, job }));
}

/** Postgres orders an enum by declaration: FOREGROUND < HIGH < NORMAL < LOW. */
function worstAllowed(maxPriorityRank: number): string {
  return ["FOREGROUND", "HIGH", "NORMAL", "LOW"][Math.max(0, Math.min(3, maxPriorityRank))]!;
}

/** The claim statement; `v` = holder, limit, lease seconds, worst priority allowed (parameters or literals); `extra`: more RETURNING. */
function claimSql(v: readonly [string, string, string, string], extra = ""): string {
  return `WITH picked AS (
       SELECT id, lease_holder AS previous_holder, lease_expires_at
         FROM job
        WHERE state IN ('QUEUED', 'TRANSIENT_ERROR') -- the partial index haul_manual_job_runnable_idx
          AND (state = 'QUEUED' OR retry_at <= now())
          AND (lease_holder IS NULL OR lease_expires_at < now())
          AND priority <= ${v[3]}::"JobPriority"
        ORDER BY priority, created_at, id
        LIMIT ${v[1]}
        FOR UPDATE SKIP LOCKED
     )
     UPDATE job j
        SET lease_holder = ${v[0]},
            lease_expires_at = now() + make_interval(secs => ${v[2]}),
            lease_token = j.lease_token + 1
       FROM picked
      WHERE j.id = picked.id
  RETURNING ${jobRowSql("j")},
            picked.previous_holder AS "previousHolder"${extra}`;
}

/** Every column of the File model, as the claim returns it inside JSON (int8 as text: JSON numbers lose precision). */
const FILE_JSON: Record<keyof File, string> = {
  id: "f.id::text",
  jobId: "f.job_id::text",
  position: "f.position",
  remoteUrl: "f.remote_url",
  localPath: "f.local_path",
  bytesTotal: "f.bytes_total::text",
  bytesTransferred: "f.bytes_transferred::text",
  transferred: "f.transferred",
  completed: "f.completed",
  sha256: "f.sha256",
  etag: "f.etag",
  lastModified: "f.last_modified",
  finalUrl: "f.final_url",
  createdAt: "f.created_at",
};
const FILES_OF_J = `(SELECT coalesce(json_agg(json_build_object(${Object.entries(FILE_JSON)
  .map(([k, e]) => `'${k}', ${e}`)
  .join(", ")}) ORDER BY f.position), '[]'::json) FROM file f WHERE f.job_id = j.id) AS "_files"`;

/** A file of the claim's `_files`, typed as Prisma types it. */
function fileFromJson(o: Record<string, unknown>): File {
  return {
    ...(o as unknown as File),
    bytesTotal: o.bytesTotal === null ? null : BigInt(o.bytesTotal as string),
    bytesTransferred: BigInt(o.bytesTransferred as string),
    createdAt: new Date(o.createdAt as string),
  };
}

/**
 * The claim through a driver transaction (ScriptTx): every portion's claim statement in ONE
 * message, each returning its jobs' whole rows and their files (in order). A portion claims up
 * to `limit` jobs of rank `maxPriorityRank` or better; a later portion never gets a job an
 * earlier one took (its lease is live by then).
 */
export async function claimJobsScript(
  tx: ScriptTx,
  holder: string,
  leaseSeconds: number,
  portions: readonly { limit: number; maxPriorityRank: number }[],
): Promise<(Claimed & { files: File[] })[]> {
  const int = (n: number) => String(Math.max(0, Math.trunc(n)));
  const wanted = portions.filter((x) => x.limit > 0);
  if (wanted.length === 0) return [];
  const results = await tx.script(
    wanted.map((x) => claimSql([sqlLiteral(holder), int(x.limit), int(leaseSeconds), `'${worstAllowed(x.maxPriorityRank)}'`], `,\n            ${FILES_OF_J}`)).join(";\n"),
  );
  return results.flat().map((r) => {
    const job = jobFromDriverRow(r);
    const files = (typeof r._files === "string" ? JSON.parse(r._files) : r._files) as Record<string, unknown>[];
    return { id: job.id, leaseToken: job.leaseToken, previousHolder: (r.previousHolder as string | null) ?? null, job, files: files.map(fileFromJson) };
  });
}

/** Renews the leases this holder still has; returns the ids it no longer holds (lost: stop them). */
export async function heartbeat(tx: Tx, holder: string, leases: { id: string; token: bigint }[], leaseSeconds: number): Promise<string[]> {
  if (leases.length === 0) return [];
  const ids = leases.map((l) => l.id);
  // The leases travel as one JSON parameter (array parameters are not portable across adapters).
  const json = JSON.stringify(leases.map((l) => ({ id: l.id, token: l.token.toString() })));
  const renewed = await tx.$queryRawUnsafe<{ id: string }[]>(
    `UPDATE job j SET lease_expires_at = now() + make_interval(secs => $2)
       FROM json_to_recordset($3::json) AS l(id uuid, token bigint)
      WHERE j.id = l.id AND j.lease_token = l.token AND j.lease_holder = $1
  RETURNING j.id`,
    holder,
    leaseSeconds,
    json,
  );
  const kept = new Set(renewed.map((r) => r.id));
  return ids.filter((id) => !kept.has(id));
}

/** Gives the lease back (the transfer has stopped and its file handles are closed). */
export async function releaseLease(tx: Tx, id: string, holder: string, token: bigint): Promise<void> {
  await tx.$executeRawUnsafe(
    `UPDATE job SET lease_holder = NULL, lease_expires_at = NULL WHERE id = $1::uuid AND lease_holder = $2 AND lease_token = $3::bigint`,
    id,
    holder,
    token.toString(),
  );
}

export class LeaseLostError extends Error {
  constructor(readonly jobId: string) {
    super(`lease on job ${jobId} was lost; stopping this attempt`);
    this.name = "LeaseLostError";
  }
}

/** Under the row lock: the caller still holds the lease with this token, or LeaseLostError. */
export function assertLease(job: Job, holder: string, token: bigint): void {
  if (job.leaseHolder !== holder || job.leaseToken !== token) throw new LeaseLostError(job.id);
}

/**
 * Jobs left CONNECTING/TRANSFERRING by a holder whose lease ran out (it crashed), or with no holder
 * at all for longer than a lease (should not happen; never leave a job stuck if it does): lock them
 * for a YIELD back to QUEUED.
 */
export function expiredActiveJobs(tx: Tx, limit: number, leaseSeconds: number): Promise<{ id: string }[]> {
  return tx.$queryRawUnsafe<{ id: string }[]>(
    `SELECT id FROM job
      WHERE state IN ('CONNECTING', 'TRANSFERRING')
        AND (lease_expires_at < now() OR (lease_holder IS NULL AND modified_at < now() - make_interval(secs => $2)))
      ORDER BY lease_expires_at NULLS FIRST
      LIMIT $1
      FOR UPDATE SKIP LOCKED`,
    limit,
    leaseSeconds,
  );
}

/** TRANSIENT_ERROR jobs whose no-progress clock has run out: to ERROR. */
export function noProgressExpired(tx: Tx, limit: number): Promise<{ id: string }[]> {
  return tx.$queryRawUnsafe<{ id: string }[]>(
    `SELECT id FROM job
      WHERE state = 'TRANSIENT_ERROR' AND no_progress_since IS NOT NULL
        AND no_progress_since + make_interval(secs => no_progress_timeout) <= now()
      LIMIT $1
      FOR UPDATE SKIP LOCKED`,
    limit,
  );
}

/** Non-final jobs untouched for longer than `seconds` (BITS JobInactivityTimeout, 90 days): to CANCELLED. */
export function inactiveJobs(tx: Tx, seconds: number, limit: number): Promise<{ id: string }[]> {
  return tx.$queryRawUnsafe<{ id: string }[]>(
    `SELECT id FROM job
      WHERE state NOT IN ('ACKNOWLEDGED', 'CANCELLED')
        AND modified_at < now() - make_interval(secs => $1)
      LIMIT $2
      FOR UPDATE SKIP LOCKED`,
    seconds,
    limit,
  );
}

/** Runnable jobs waiting, by priority rank (0 = FOREGROUND): the scheduler's view of the queue. */
export async function waitingByPriority(tx: Tx): Promise<Map<string, number>> {
  const rows = await tx.$queryRawUnsafe<{ priority: string; n: bigint }[]>(
    `SELECT priority::text AS priority, count(*) AS n FROM job
      WHERE (state = 'QUEUED' OR (state = 'TRANSIENT_ERROR' AND retry_at <= now()))
        AND (lease_holder IS NULL OR lease_expires_at < now())
      GROUP BY priority`,
  );
  return new Map(rows.map((r) => [r.priority, Number(r.n)]));
}

/** When the next TRANSIENT_ERROR job becomes due (to sleep until then). */
export async function nextRetryAt(tx: Tx): Promise<Date | null> {
  const rows = await tx.$queryRawUnsafe<{ at: Date | null }[]>(`SELECT min(retry_at) AS at FROM job WHERE state = 'TRANSIENT_ERROR'`);
  return rows[0]?.at ?? null;
}
