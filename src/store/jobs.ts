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
  const locked = await tx.$queryRaw<{ id: string }[]>`SELECT id FROM job WHERE id = ${id}::uuid FOR UPDATE`;
  if (locked.length === 0) return null;
  return tx.job.findUnique({ where: { id } });
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
