// The hottest read, `job(id)` without relations, straight through the driver: one statement of
// only the columns the document needs, converted to what Prisma would have returned for them (the
// Job row's camelCase keys, BigInt for int8). Prisma's query engine costs about three times the
// driver's CPU per query; for job(id) that was most of the request after HTTP and GraphQL.
import type { Job } from "../generated/prisma/client.js";
import type { Database } from "./db.js";

/** Job columns this module may read, with their SQL expression. */
const JOB_COLUMNS: Record<string, { sql: string; bigint?: true }> = {
  id: { sql: "id::text" },
  type: { sql: "type::text" },
  displayName: { sql: "display_name" },
  description: { sql: "description" },
  priority: { sql: "priority::text" },
  state: { sql: "state::text" },
  owner: { sql: "owner" },
  minimumRetryDelay: { sql: "minimum_retry_delay" },
  noProgressTimeout: { sql: "no_progress_timeout" },
  maximumDownloadTime: { sql: "maximum_download_time" },
  errorContext: { sql: "error_context::text" },
  errorCode: { sql: "error_code" },
  errorMessage: { sql: "error_message" },
  errorFileId: { sql: "error_file_id::text" },
  errorHttpStatus: { sql: "error_http_status" },
  errorCount: { sql: "error_count" },
  filesTotal: { sql: "files_total" },
  filesTransferred: { sql: "files_transferred" },
  bytesTotal: { sql: "bytes_total::text", bigint: true },
  bytesTransferred: { sql: "bytes_transferred::text", bigint: true },
  retryAt: { sql: "retry_at" },
  createdAt: { sql: "created_at" },
  modifiedAt: { sql: "modified_at" },
  transferCompletedAt: { sql: "transfer_completed_at" },
  maxBytesPerSecond: { sql: "max_bytes_per_second::text", bigint: true },
  httpHeaders: { sql: "http_headers" },
  httpCredentials: { sql: "http_credentials" },
};

/** Whether readJobColumns can read every one of these columns. */
export function readableJobColumns(columns: readonly string[]): boolean {
  return columns.every((c) => Object.hasOwn(JOB_COLUMNS, c));
}

const statements = new Map<string, { sql: string; columns: string[]; bigints: string[] }>();

function statementFor(columns: readonly string[]) {
  const key = columns.join(",");
  let st = statements.get(key);
  if (!st) {
    const cols = [...columns];
    st = {
      sql: `SELECT ${cols.map((c) => `${JOB_COLUMNS[c]!.sql} AS "${c}"`).join(", ")} FROM job WHERE id = $1::uuid`,
      columns: cols,
      bigints: cols.filter((c) => JOB_COLUMNS[c]!.bigint),
    };
    if (statements.size < 256) statements.set(key, st);
  }
  return st;
}

/**
 * One job's `columns` (names of Job fields; see readableJobColumns), or null when there is no such
 * job. The result has exactly those keys, typed as Prisma types them.
 */
export async function readJobColumns(db: Pick<Database, "query">, id: string, columns: readonly string[]): Promise<Partial<Job> | null> {
  const st = statementFor(columns);
  const rows = await db.query<Record<string, unknown>>(st.sql, [id]);
  const row = rows[0];
  if (!row) return null;
  for (const c of st.bigints) if (row[c] != null) row[c] = BigInt(row[c] as string);
  for (const c of ["retryAt", "createdAt", "modifiedAt", "transferCompletedAt"]) {
    const v = row[c];
    if (v != null && !(v instanceof Date)) row[c] = new Date(v as string);
  }
  return row as Partial<Job>;
}

// ---- a page of jobs (the `jobs` connection) and the files of those jobs ---------------------------

/** File columns readFilesOfJobs may read, with their SQL expression. */
const FILE_COLUMNS: Record<string, { sql: string; bigint?: true }> = {
  id: { sql: "id::text" },
  jobId: { sql: "job_id::text" },
  position: { sql: "position" },
  remoteUrl: { sql: "remote_url" },
  localPath: { sql: "local_path" },
  bytesTotal: { sql: "bytes_total::text", bigint: true },
  bytesTransferred: { sql: "bytes_transferred::text", bigint: true },
  transferred: { sql: "transferred" },
  completed: { sql: "completed" },
  sha256: { sql: "sha256" },
};

/** Whether readFilesOfJobs can read every one of these columns. */
export function readableFileColumns(columns: readonly string[]): boolean {
  return columns.every((c) => Object.hasOwn(FILE_COLUMNS, c));
}

function convertJobRow(row: Record<string, unknown>, bigints: readonly string[]): void {
  for (const c of bigints) if (row[c] != null) row[c] = BigInt(row[c] as string);
  for (const c of ["retryAt", "createdAt", "modifiedAt", "transferCompletedAt"]) {
    const v = row[c];
    if (v != null && !(v instanceof Date)) row[c] = new Date(v as string);
  }
}

export interface JobPageQuery {
  /** job.state IN (...); not empty */
  states: readonly string[];
  /** job.owner = ...; undefined: every owner */
  owner?: string;
  /** the UUID of the `after` cursor's job: rows from that job's (created_at, id) on, that job's row skipped by OFFSET 1 */
  after?: string;
  /** rows to read (the page size + 1) */
  take: number;
  /** Job columns (see readableJobColumns) */
  columns: readonly string[];
  /** also read each job's number of files, as `filesCount` */
  fileCount: boolean;
}

/**
 * A page of `jobs`, with exactly the semantics of the Prisma query the connection ran before
 * (`findMany({ where: { state: { in }, owner }, orderBy: [createdAt, id], cursor: { id }, skip: 1, take })`):
 * oldest first; with a cursor, the rows at or after the cursor job's (created_at, id), OFFSET 1
 * (Prisma skips one row whether or not the cursor job itself matches the filter), and no rows at all
 * when the cursor job does not exist.
 */
export async function readJobPage(db: Pick<Database, "query">, q: JobPageQuery): Promise<Record<string, unknown>[]> {
  const cols = [...q.columns];
  const bigints = cols.filter((c) => JOB_COLUMNS[c]!.bigint);
  const params: unknown[] = [...q.states];
  let where = `job.state IN (${q.states.map((_, i) => `$${i + 1}::"JobState"`).join(", ")})`;
  if (q.owner !== undefined) {
    params.push(q.owner);
    where += ` AND job.owner = $${params.length}`;
  }
  if (q.after !== undefined) {
    params.push(q.after);
    where += ` AND (job.created_at, job.id) >= (SELECT c.created_at, c.id FROM job c WHERE c.id = $${params.length}::uuid)`;
  }
  const select = cols.map((c) => `${JOB_COLUMNS[c]!.sql} AS "${c}"`);
  if (q.fileCount) select.push(`(SELECT count(*)::int FROM file f WHERE f.job_id = job.id) AS "filesCount"`);
  params.push(q.take);
  let sql = `SELECT ${select.join(", ")} FROM job WHERE ${where} ORDER BY job.created_at, job.id LIMIT $${params.length}`;
  if (q.after !== undefined) sql += " OFFSET 1";
  const rows = await db.query<Record<string, unknown>>(sql, params);
  for (const row of rows) convertJobRow(row, bigints);
  return rows;
}

/**
 * The first `take` files (by position) of each of these jobs, in one statement; the result holds
 * the jobs' files in position order (job by job, in no particular job order).
 */
export async function readFilesOfJobs(db: Pick<Database, "query">, jobIds: readonly string[], columns: readonly string[], take: number): Promise<Record<string, unknown>[]> {
  if (jobIds.length === 0 || take <= 0) return [];
  const cols = [...columns];
  const bigints = cols.filter((c) => FILE_COLUMNS[c]!.bigint);
  const sql =
    `SELECT ${cols.map((c) => `"${c}"`).join(", ")} FROM (SELECT ${cols.map((c) => `${FILE_COLUMNS[c]!.sql} AS "${c}"`).join(", ")}, ` +
    `row_number() OVER (PARTITION BY job_id ORDER BY position) AS rn FROM file WHERE job_id = ANY($1::uuid[])) AS f ` +
    `WHERE rn <= $2 ORDER BY "jobId", "position"`;
  const rows = await db.query<Record<string, unknown>>(sql, [jobIds, take]);
  for (const row of rows) for (const c of bigints) if (row[c] != null) row[c] = BigInt(row[c] as string);
  return rows;
}
