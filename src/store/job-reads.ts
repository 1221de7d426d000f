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
