// The JobEvent log: append-only, one row per thing that happened to a job, with a sequence number
// that is strictly increasing in COMMIT order. That last property is what lets a subscriber resume
// from a cursor with no gap: a reader that has seen seq N can never later find a committed event
// below N.
//
// How: a plain BIGSERIAL hands out numbers at INSERT time, so two overlapping transactions may commit
// in the other order (seq 11 visible before seq 10), and a reader that saw 11 would skip 10 forever.
// Every writer therefore takes one transaction-scoped advisory lock just before it inserts events
// and holds it until COMMIT. Postgres makes a commit visible before it releases the transaction's
// locks, so when the next writer draws its number, every smaller number is already visible (or was
// rolled back, which leaves a harmless hole). The lock is held only for the tail of a transaction
// (insert events, notify, commit); several jobs' events are written under one lock when batched.
import type { Prisma, Job, JobEvent } from "../generated/prisma/client.js";
import type { JobEventKind, JobState, ErrorContext } from "../generated/prisma/enums.js";
import { sqlLiteral } from "./db.js";

export type Tx = Prisma.TransactionClient;

/** NOTIFY channel: payload is the highest seq just committed. Only a hint: readers query the table. */
export const EVENTS_CHANNEL = "haul_job_events";
const EVENT_APPEND_LOCK = 0x68617576; // "hauv"

export interface NewEvent {
  job: Job; // the row as written by this transaction: stored as the event's snapshot
  kind: JobEventKind;
  previousState: JobState | null;
  actor: string | null;
  details?: Record<string, unknown>;
}

/** The highest seq each transaction appended (by its transaction client): what a post-commit poke can name. */
const appended = new WeakMap<object, bigint>();

/** After the transaction of `tx` committed: the highest seq it appended, or null if it appended none. */
export function appendedSeq(tx: Tx | null): bigint | null {
  return tx ? (appended.get(tx) ?? null) : null;
}

/**
 * `prisma.$transaction(fn)`, then `afterCommit(seq)` with the highest seq the transaction appended,
 * only if it appended events (the event feed then knows what it must have read).
 */
export async function transactThenPoke<T>(
  prisma: { $transaction<R>(fn: (tx: Tx) => Promise<R>, opts?: { timeout?: number; maxWait?: number }): Promise<R> },
  fn: (tx: Tx) => Promise<T>,
  afterCommit: ((seq: bigint) => void) | undefined,
  /** how long the transaction may take (default 15 s; large batches ask for more) */
  timeoutMs = 15_000,
): Promise<T> {
  let used: Tx | null = null;
  const r = await prisma.$transaction(
    (tx) => {
      used = tx;
      return fn(tx);
    },
    { timeout: timeoutMs, maxWait: 15_000 },
  );
  const seq = appendedSeq(used);
  if (seq !== null) afterCommit?.(seq);
  return r;
}

/** Appends events (in the given order) inside the caller's transaction; returns them with their seq. */
export async function appendEvents(tx: Tx, events: readonly NewEvent[]): Promise<JobEvent[]> {
  if (events.length === 0) return [];
  await tx.$executeRaw`SELECT pg_advisory_xact_lock(${EVENT_APPEND_LOCK})`;
  const rows = await tx.jobEvent.createManyAndReturn({
    data: events.map((e) => ({
      jobId: e.job.id,
      owner: e.job.owner,
      kind: e.kind,
      previousState: e.previousState,
      state: e.job.state,
      at: e.job.modifiedAt,
      actor: e.actor,
      errorContext: e.job.errorContext,
      errorCode: e.job.errorCode,
      errorMessage: e.job.errorMessage,
      errorFileId: e.job.errorFileId,
      errorHttpStatus: e.job.errorHttpStatus,
      data: { ...(e.details ?? {}), job: snapshotJob(e.job) } as Prisma.InputJsonValue,
    })),
  });
  rows.sort((a, b) => (a.seq < b.seq ? -1 : 1));
  const last = rows[rows.length - 1]!.seq;
  appended.set(tx, last > (appended.get(tx) ?? 0n) ? last : appended.get(tx)!);
  // Delivered to listeners only if and when the transaction commits.
  await tx.$executeRaw`SELECT pg_notify(${EVENTS_CHANNEL}, ${last.toString()})`;
  return rows;
}

/**
 * appendEvents for a driver transaction (ScriptTx), as statements to send in one message with
 * others, first: take the event-log lock, insert the events in the given order, NOTIFY the highest
 * seq. `appendedSeqOf` reads that seq from the message's results.
 */
export function appendEventsSql(events: readonly NewEvent[]): string[] {
  const rows = events.map((e, i) => ({
    i,
    job_id: e.job.id,
    owner: e.job.owner,
    kind: e.kind,
    previous_state: e.previousState,
    state: e.job.state,
    at: e.job.modifiedAt.toISOString(),
    actor: e.actor,
    error_context: e.job.errorContext,
    error_code: e.job.errorCode,
    error_message: e.job.errorMessage,
    error_file_id: e.job.errorFileId,
    error_http_status: e.job.errorHttpStatus,
    data: { ...(e.details ?? {}), job: snapshotJob(e.job) },
  }));
  return [
    `SELECT pg_advisory_xact_lock(${EVENT_APPEND_LOCK})`,
    `WITH ins AS (
       INSERT INTO job_event (job_id, owner, kind, previous_state, state, at, actor, error_context, error_code, error_message, error_file_id, error_http_status, data)
       SELECT v.job_id, v.owner, v.kind::"JobEventKind", v.previous_state::"JobState", v.state::"JobState", v.at, v.actor,
              v.error_context::"ErrorContext", v.error_code, v.error_message, v.error_file_id, v.error_http_status, v.data::jsonb
         FROM json_to_recordset(${sqlLiteral(JSON.stringify(rows))}::json) AS v(i int, job_id uuid, owner text, kind text, previous_state text,
              state text, at timestamptz, actor text, error_context text, error_code text, error_message text, error_file_id uuid,
              error_http_status int, data json)
        ORDER BY v.i
       RETURNING seq
     )
     SELECT m.last, pg_notify(${sqlLiteral(EVENTS_CHANNEL)}, m.last) FROM (SELECT max(seq)::text AS last FROM ins) m`,
  ];
}

/** The highest seq appended, from the results of a script that began with appendEventsSql's statements. */
export function appendedSeqOf(results: readonly Record<string, unknown>[][]): bigint {
  return BigInt(results[1]![0]!.last as string);
}

export interface EventQuery {
  after: bigint;
  jobId?: string;
  kinds?: readonly JobEventKind[];
  owner?: string;
  limit: number;
}

/**
 * Events after a cursor, in seq order, straight through the driver (the event feed's reads: one per
 * commit batch, and every replay page): rows typed as Prisma types them, without Prisma's per-query
 * cost.
 */
export async function readEventsDirect(db: { query<T>(sql: string, params: unknown[]): Promise<T[]> }, q: EventQuery): Promise<JobEvent[]> {
  const params: unknown[] = [q.after.toString()];
  let where = "seq > $1::bigint";
  if (q.jobId) {
    params.push(q.jobId);
    where += ` AND job_id = $${params.length}::uuid`;
  }
  if (q.kinds) {
    params.push(JSON.stringify(q.kinds));
    where += ` AND kind::text IN (SELECT json_array_elements_text($${params.length}::json))`;
  }
  if (q.owner) {
    params.push(q.owner);
    where += ` AND owner = $${params.length}`;
  }
  params.push(q.limit);
  const rows = await db.query<Record<string, unknown>>(
    `SELECT seq::text AS seq, job_id::text AS "jobId", owner, kind::text AS kind, previous_state::text AS "previousState",
            state::text AS state, at, actor, error_context::text AS "errorContext", error_code AS "errorCode",
            error_message AS "errorMessage", error_file_id::text AS "errorFileId", error_http_status AS "errorHttpStatus", data
       FROM job_event WHERE ${where} ORDER BY job_event.seq LIMIT $${params.length}`, // ORDER BY the column: `seq` alone would be the text alias (1, 10, 2, ...)
    params,
  );
  for (const r of rows) {
    r.seq = BigInt(r.seq as string);
    if (!(r.at instanceof Date)) r.at = new Date(r.at as string);
    if (typeof r.data === "string") r.data = JSON.parse(r.data); // a driver that does not parse json
  }
  return rows as unknown as JobEvent[];
}

export async function lastSeq(db: Tx): Promise<bigint> {
  const row = await db.jobEvent.findFirst({ orderBy: { seq: "desc" }, select: { seq: true } });
  return row?.seq ?? 0n;
}

// ---- the job snapshot stored with each event -------------------------------------------------
// The event carries the job as that transaction wrote it, so `JobStateChange.job` shows the job at
// that transition (not whatever it is when the subscriber happens to read), and pushing an event to
// thousands of subscribers needs no further query.

type JobSnapshot = Record<string, unknown>;

const BIGINT_FIELDS = ["bytesTotal", "bytesTransferred"] as const;
const DATE_FIELDS = ["retryAt", "noProgressSince", "activeSince", "createdAt", "modifiedAt", "transferCompletedAt"] as const;

export function snapshotJob(job: Job): JobSnapshot {
  const out: JobSnapshot = {};
  for (const [k, v] of Object.entries(job)) {
    if (typeof v === "bigint") out[k] = v.toString();
    else if (v instanceof Date) out[k] = v.toISOString();
    else if (v === null || typeof v === "string" || typeof v === "number" || typeof v === "boolean") out[k] = v;
  }
  // Secrets never enter the log: only whether credentials are set and the header names.
  out.httpCredentials = job.httpCredentials == null ? null : {};
  out.httpHeaders = Array.isArray(job.httpHeaders) ? (job.httpHeaders as { name: string }[]).map((h) => ({ name: h.name })) : null;
  return out;
}

export function restoreJob(snapshot: unknown): Job | null {
  if (!snapshot || typeof snapshot !== "object") return null;
  const s = snapshot as Record<string, unknown>;
  const job = { ...s } as Record<string, unknown>;
  for (const k of BIGINT_FIELDS) job[k] = s[k] === null || s[k] === undefined ? null : BigInt(s[k] as string);
  for (const k of DATE_FIELDS) job[k] = s[k] === null || s[k] === undefined ? null : new Date(s[k] as string);
  if (job.bytesTransferred === null) job.bytesTransferred = 0n;
  return job as unknown as Job;
}

/** The job as it was right after `event` committed. */
export function jobAtEvent(event: JobEvent): Job | null {
  const data = event.data as Record<string, unknown> | null;
  return restoreJob(data?.job);
}

export type { JobEvent, JobEventKind, JobState, ErrorContext };
