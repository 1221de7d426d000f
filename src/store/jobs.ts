// Job and file rows. Every write that changes a job goes through `updateJob`, a compare-and-set on the
// row's version: zero rows updated is a typed conflict, never a silent overwrite.
import type { Prisma, Job, File } from "../generated/prisma/client.js";
import type { Tx } from "./events.js";

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
 * Every column of the Job model as Prisma names and types it, for raw statements that return whole
 * rows: enums and uuids as text; int8, timestamptz and json come back as BigInt, Date and objects,
 * as from the model API (test/integration/job-rows.test.ts compares the two).
 */
export const JOB_ROW_SQL = [
  `id::text AS "id"`,
  `type::text AS "type"`,
  `display_name AS "displayName"`,
  `description`,
  `priority::text AS "priority"`,
  `state::text AS "state"`,
  `owner`,
  `minimum_retry_delay AS "minimumRetryDelay"`,
  `no_progress_timeout AS "noProgressTimeout"`,
  `maximum_download_time AS "maximumDownloadTime"`,
  `error_context::text AS "errorContext"`,
  `error_code AS "errorCode"`,
  `error_message AS "errorMessage"`,
  `error_file_id::text AS "errorFileId"`,
  `error_http_status AS "errorHttpStatus"`,
  `error_count AS "errorCount"`,
  `files_total AS "filesTotal"`,
  `files_transferred AS "filesTransferred"`,
  `bytes_total AS "bytesTotal"`,
  `bytes_transferred AS "bytesTransferred"`,
  `retry_at AS "retryAt"`,
  `no_progress_since AS "noProgressSince"`,
  `active_since AS "activeSince"`,
  `active_seconds AS "activeSeconds"`,
  `created_at AS "createdAt"`,
  `modified_at AS "modifiedAt"`,
  `transfer_completed_at AS "transferCompletedAt"`,
  `version`,
  `max_bytes_per_second AS "maxBytesPerSecond"`,
  `http_headers AS "httpHeaders"`,
  `http_credentials AS "httpCredentials"`,
  `lease_holder AS "leaseHolder"`,
  `lease_expires_at AS "leaseExpiresAt"`,
  `lease_token AS "leaseToken"`,
].join(", ");

/**
 * Locks several job rows (in id order: concurrent batches never deadlock) and reads them, in one
 * statement (the lock of every command and every group commit of the worker's reports).
 */
export async function lockJobs(tx: Tx, ids: readonly string[]): Promise<Map<string, Job>> {
  if (ids.length === 0) return new Map();
  const rows = await tx.$queryRawUnsafe<Job[]>(
    `SELECT ${JOB_ROW_SQL} FROM job WHERE id IN (SELECT json_array_elements_text($1::json)::uuid) ORDER BY id FOR UPDATE`,
    JSON.stringify(ids),
  );
  return new Map(rows.map((r) => [r.id, r]));
}

/**
 * `updateJob` for several rows: rows that get the same columns and had the same version are
 * written by one statement (still compare-and-set on id + version). Returns the rows in the order
 * given.
 */
export async function updateJobs(tx: Tx, items: readonly { expected: Job; data: Prisma.JobUpdateManyMutationInput }[]): Promise<Job[]> {
  if (items.length <= 1) return Promise.all(items.map((i) => updateJob(tx, i.expected, i.data)));
  const groups = new Map<string, { version: number; data: Prisma.JobUpdateManyMutationInput; ids: string[] }>();
  for (const { expected, data } of items) {
    const key = `${expected.version}\u0000${JSON.stringify(data, (_k, v) => (typeof v === "bigint" ? `${v}n` : v))}`;
    const g = groups.get(key) ?? { version: expected.version, data, ids: [] };
    g.ids.push(expected.id);
    groups.set(key, g);
  }
  const written = new Map<string, Job>();
  for (const g of groups.values()) {
    const rows = await tx.job.updateManyAndReturn({
      where: { id: { in: g.ids }, version: g.version },
      data: { ...g.data, version: g.version + 1 },
    });
    for (const r of rows) written.set(r.id, r);
    const missing = g.ids.find((id) => !written.has(id));
    if (missing) throw new ConflictError(missing);
  }
  return items.map((i) => written.get(i.expected.id)!);
}

/** Compare-and-set: writes `data` only if the row still has `expected.version`; bumps the version. */
export async function updateJob(tx: Tx, expected: Job, data: Prisma.JobUpdateManyMutationInput): Promise<Job> {
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

export async function insertFiles(tx: Tx, files: Prisma.FileCreateManyInput[]): Promise<void> {
  if (files.length) await tx.file.createMany({ data: files });
}

export function filesOfJob(tx: Tx, jobId: string): Promise<File[]> {
  return tx.file.findMany({ where: { jobId }, orderBy: { position: "asc" } });
}

export function markFilesCompleted(tx: Tx, ids: string[]): Promise<Prisma.BatchPayload> {
  return tx.file.updateMany({ where: { id: { in: ids } }, data: { completed: true } });
}
