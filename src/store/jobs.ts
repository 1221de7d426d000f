// Job and file rows. Every write that changes a job goes through `updateJob`, a compare-and-set on the
// row's version: zero rows updated is a typed conflict, never a silent overwrite.
import type { Prisma, Job, File } from "../generated/prisma/client.js";
import type { Tx } from "./events.js";
import { sqlLiteral, type ScriptTx } from "./db.js";

export class ConflictError extends Error {
  constructor(readonly jobId: string) {
    super(`job ${jobId} was changed concurrently`);
    this.name = "ConflictError";
  }
}

/** Locks the job row until the end of the transaction and returns it (null when there is none). */
export async function lockJob(tx: Tx, id: string): Promise<Job | null> {
  return (await lockJobs(tx, [id])).get(id) ?? null;
}

/**
 * Every column of the Job model: Prisma's field name -> SQL column and SQL type. Keyed by the model's
 * fields, so a column added to the model without an entry here fails to compile.
 */
const JOB_COLUMNS: Record<keyof Job, { col: string; type: string }> = {
  id: { col: "id", type: "uuid" },
  type: { col: "type", type: `"JobType"` },
  displayName: { col: "display_name", type: "text" },
  description: { col: "description", type: "text" },
  priority: { col: "priority", type: `"JobPriority"` },
  state: { col: "state", type: `"JobState"` },
  owner: { col: "owner", type: "text" },
  minimumRetryDelay: { col: "minimum_retry_delay", type: "int" },
  noProgressTimeout: { col: "no_progress_timeout", type: "int" },
  maximumDownloadTime: { col: "maximum_download_time", type: "int" },
  errorContext: { col: "error_context", type: `"ErrorContext"` },
  errorCode: { col: "error_code", type: "text" },
  errorMessage: { col: "error_message", type: "text" },
  errorFileId: { col: "error_file_id", type: "uuid" },
  errorHttpStatus: { col: "error_http_status", type: "int" },
  errorCount: { col: "error_count", type: "int" },
  filesTotal: { col: "files_total", type: "int" },
  filesTransferred: { col: "files_transferred", type: "int" },
  bytesTotal: { col: "bytes_total", type: "bigint" },
  bytesTransferred: { col: "bytes_transferred", type: "bigint" },
  retryAt: { col: "retry_at", type: "timestamptz" },
  noProgressSince: { col: "no_progress_since", type: "timestamptz" },
  activeSince: { col: "active_since", type: "timestamptz" },
  activeSeconds: { col: "active_seconds", type: "int" },
  createdAt: { col: "created_at", type: "timestamptz" },
  modifiedAt: { col: "modified_at", type: "timestamptz" },
  transferCompletedAt: { col: "transfer_completed_at", type: "timestamptz" },
  version: { col: "version", type: "int" },
  maxBytesPerSecond: { col: "max_bytes_per_second", type: "bigint" },
  httpHeaders: { col: "http_headers", type: "jsonb" },
  httpCredentials: { col: "http_credentials", type: "jsonb" },
  leaseHolder: { col: "lease_holder", type: "text" },
  leaseExpiresAt: { col: "lease_expires_at", type: "timestamptz" },
  leaseToken: { col: "lease_token", type: "bigint" },
};

/**
 * The select list of a whole job row as Prisma names and types it, for raw statements that return
 * whole rows (`alias`: the table's name or alias in that statement): enums and uuids as text; int8,
 * timestamptz and json come back as BigInt, Date and objects, as from the model API
 * (test/integration/job-rows.test.ts compares the two).
 */
export function jobRowSql(alias: string): string {
  return Object.entries(JOB_COLUMNS)
    .map(([field, { col, type }]) => `${alias}.${col}${type === "uuid" || type.startsWith(`"`) ? "::text" : ""} AS "${field}"`)
    .join(", ");
}

/**
 * Locks several job rows (in id order: concurrent batches never deadlock) and reads them, in one
 * statement (the lock of every command and every group commit of the worker's reports).
 */
export async function lockJobs(tx: Tx, ids: readonly string[]): Promise<Map<string, Job>> {
  if (ids.length === 0) return new Map();
  const rows = await tx.$queryRawUnsafe<Job[]>(
    `SELECT ${jobRowSql("job")} FROM job WHERE id IN (SELECT json_array_elements_text($1::json)::uuid) ORDER BY id FOR UPDATE`,
    JSON.stringify(ids),
  );
  return new Map(rows.map((r) => [r.id, r]));
}

/**
 * Job columns that the state machine, the reports and the commands write, for the one-statement
 * compare-and-set below. A write with any other column (or a Prisma operation instead of a value)
 * goes through the model API.
 */
const WRITABLE = new Set<string>([
  "state",
  "priority",
  "errorContext",
  "errorCode",
  "errorMessage",
  "errorFileId",
  "errorHttpStatus",
  "errorCount",
  "filesTotal",
  "filesTransferred",
  "bytesTotal",
  "bytesTransferred",
  "retryAt",
  "noProgressSince",
  "activeSince",
  "activeSeconds",
  "modifiedAt",
  "transferCompletedAt",
  "leaseHolder",
  "leaseExpiresAt",
] satisfies (keyof Job)[]);

/** The value as JSON text for a WRITABLE column; undefined when it is not a plain value. */
function jsonValue(v: unknown): string | null | undefined {
  if (v === null) return null;
  if (v instanceof Date) return v.toISOString();
  if (typeof v === "bigint" || typeof v === "number") return v.toString();
  if (typeof v === "string") return v;
  return undefined;
}

const casStatements = new Map<string, string>();

/**
 * One UPDATE for rows that write the same columns: values per row (a JSON array, `source`: `$1` or
 * a literal), compare-and-set on each row's version.
 */
function casStatement(keys: readonly string[], source = "$1"): string {
  const sig = keys.join(",");
  let sql = casStatements.get(sig);
  if (!sql) {
    const sets = keys.map((k, i) => {
      const { col, type } = JOB_COLUMNS[k as keyof Job];
      return `${col} = v.c${i}::${type}`;
    });
    const cols = keys.map((_k, i) => `c${i} text`);
    sql =
      `UPDATE job SET ${[...sets, "version = job.version + 1"].join(", ")} ` +
      `FROM json_to_recordset($1::json) AS v(vid uuid, vver int${cols.length ? ", " : ""}${cols.join(", ")}) ` +
      `WHERE job.id = v.vid AND job.version = v.vver RETURNING ${jobRowSql("job")}`;
    if (casStatements.size < 256) casStatements.set(sig, sql);
  }
  return source === "$1" ? sql : sql.replace("json_to_recordset($1::json)", () => `json_to_recordset(${source}::json)`);
}

type CasGroup = { keys: string[]; rows: Record<string, string | number | null>[] };

/**
 * Sorts compare-and-set writes into groups that write the same columns; `other` gets the items
 * with a column or value that the one-statement path does not write (a Prisma operation).
 */
function casGroups(items: readonly { expected: Job; data: Prisma.JobUpdateManyMutationInput }[]) {
  const groups = new Map<string, CasGroup>();
  const other: { expected: Job; data: Prisma.JobUpdateManyMutationInput }[] = [];
  for (const item of items) {
    const { expected, data } = item;
    const keys = Object.keys(data)
      .filter((k) => (data as Record<string, unknown>)[k] !== undefined)
      .sort();
    const values = keys.map((k) => (WRITABLE.has(k) ? jsonValue((data as Record<string, unknown>)[k]) : undefined));
    if (values.some((v) => v === undefined)) {
      other.push(item);
      continue;
    }
    const sig = keys.join(",");
    const g = groups.get(sig) ?? { keys, rows: [] };
    const row: Record<string, string | number | null> = { vid: expected.id, vver: expected.version };
    values.forEach((v, i) => (row[`c${i}`] = v as string | null));
    g.rows.push(row);
    groups.set(sig, g);
  }
  return { groups: [...groups.values()], other };
}

function checkWritten(g: CasGroup, written: Map<string, Job>): void {
  const missing = g.rows.find((r) => !written.has(r.vid as string));
  if (missing) throw new ConflictError(missing.vid as string);
}

/**
 * Compare-and-set on several rows: each row is written only if it still has `expected.version`
 * (the version is bumped); rows that write the same columns go in one statement, whatever their
 * values. Returns the written rows in the order given; ConflictError when any row had changed.
 */
export async function updateJobs(tx: Tx, items: readonly { expected: Job; data: Prisma.JobUpdateManyMutationInput }[]): Promise<Job[]> {
  const written = new Map<string, Job>();
  const { groups, other } = casGroups(items);
  for (const { expected, data } of other) written.set(expected.id, await updateJobViaModel(tx, expected, data));
  for (const g of groups) {
    const rows = await tx.$queryRawUnsafe<Job[]>(casStatement(g.keys), JSON.stringify(g.rows));
    for (const r of rows) written.set(r.id, r);
    checkWritten(g, written);
  }
  return items.map((i) => written.get(i.expected.id)!);
}

/**
 * updateJobs for a driver transaction (ScriptTx): every group's statement in ONE message. Only
 * plain column values (what the state machine and the reports write); anything else is a bug.
 */
export async function updateJobsScript(tx: ScriptTx, items: readonly { expected: Job; data: Prisma.JobUpdateManyMutationInput }[]): Promise<Job[]> {
  const { groups, other } = casGroups(items);
  if (other.length) throw new Error(`updateJobsScript: job ${other[0]!.expected.id}: a column or value it cannot write`);
  if (groups.length === 0) return [];
  const results = await tx.script(groups.map((g) => casStatement(g.keys, sqlLiteral(JSON.stringify(g.rows)))).join(";\n"));
  const written = new Map<string, Job>();
  results.forEach((rows, i) => {
    for (const r of rows) {
      const job = jobFromDriverRow(r);
      written.set(job.id, job);
    }
    checkWritten(groups[i]!, written);
  });
  return items.map((i) => written.get(i.expected.id)!);
}

/**
 * A row selected with jobRowSql, as the driver returned it, typed as Prisma types it: int8 as
 * BigInt (the driver may give a string), timestamps as Date.
 */
export function jobFromDriverRow(r: Record<string, unknown>): Job {
  const out: Record<string, unknown> = {};
  for (const [field, { type }] of Object.entries(JOB_COLUMNS)) {
    const v = r[field];
    if (v === null || v === undefined) out[field] = null;
    else if (type === "bigint") out[field] = BigInt(v as string | number | bigint);
    else if (type === "timestamptz") out[field] = v instanceof Date ? v : new Date(v as string);
    else if (type === "int") out[field] = Number(v);
    else if (type === "jsonb") out[field] = typeof v === "string" ? JSON.parse(v) : v;
    else out[field] = v;
  }
  return out as unknown as Job;
}

/** Compare-and-set: writes `data` only if the row still has `expected.version`; bumps the version. */
export async function updateJob(tx: Tx, expected: Job, data: Prisma.JobUpdateManyMutationInput): Promise<Job> {
  return (await updateJobs(tx, [{ expected, data }]))[0]!;
}

async function updateJobViaModel(tx: Tx, expected: Job, data: Prisma.JobUpdateManyMutationInput): Promise<Job> {
  const res = await tx.job.updateManyAndReturn({
    where: { id: expected.id, version: expected.version },
    data: { ...data, version: expected.version + 1 },
  });
  const row = res[0];
  if (!row) throw new ConflictError(expected.id);
  return row;
}

export function insertJob(tx: Tx, data: Prisma.JobCreateManyInput): Promise<Job> {
  return tx.job.create({ data });
}

/**
 * File rows per INSERT: 14 columns x 2,000 rows stays under Postgres' 32,767 bind parameters, so
 * Prisma never splits a statement itself. It would send its pieces concurrently on the one
 * connection of the transaction, which node-postgres queues today but pg 9 refuses.
 */
const FILE_ROWS_PER_INSERT = 2_000;

export async function insertFiles(tx: Tx, files: Prisma.FileCreateManyInput[]): Promise<void> {
  for (let i = 0; i < files.length; i += FILE_ROWS_PER_INSERT) {
    await tx.file.createMany({ data: files.slice(i, i + FILE_ROWS_PER_INSERT) });
  }
}

export function filesOfJob(tx: Tx, jobId: string): Promise<File[]> {
  return tx.file.findMany({ where: { jobId }, orderBy: { position: "asc" } });
}

export function markFilesCompleted(tx: Tx, ids: string[]): Promise<Prisma.BatchPayload> {
  return tx.file.updateMany({ where: { id: { in: ids } }, data: { completed: true } });
}
