// Helpers shared by the API commands (commands.ts) and the worker's reports (reports.ts): the job
// row as the state machine sees it, and the state machine's patch as column values.
import type { Prisma, Job } from "../generated/prisma/client.js";
import { DomainError } from "../domain/errors.js";
import type { Decision, JobPatch, JobSnapshot } from "../domain/job-state.js";

export function notFound(id: string): DomainError {
  return new DomainError("NOT_FOUND", `no job with id ${id}`);
}

export function refuse(d: Extract<Decision, { kind: "refused" }>): never {
  throw new DomainError(d.code, d.message);
}

export function snapshotOf(job: Job): JobSnapshot {
  return {
    state: job.state,
    type: job.type,
    filesTotal: job.filesTotal,
    filesTransferred: job.filesTransferred,
    errorCount: job.errorCount,
    minimumRetryDelay: job.minimumRetryDelay,
    noProgressTimeout: job.noProgressTimeout,
    noProgressSince: job.noProgressSince,
    retryAt: job.retryAt,
    activeSince: job.activeSince,
    activeSeconds: job.activeSeconds,
    maximumDownloadTime: job.maximumDownloadTime,
    error: job.errorCode
      ? {
          context: job.errorContext ?? "UNKNOWN",
          code: job.errorCode,
          message: job.errorMessage ?? "",
          fileId: job.errorFileId,
          httpStatus: job.errorHttpStatus,
        }
      : null,
  };
}

/** The state machine's patch as column values. */
export function patchToData(patch: JobPatch): Prisma.JobUpdateManyMutationInput {
  const data: Prisma.JobUpdateManyMutationInput = {};
  if (patch.state !== undefined) data.state = patch.state;
  if (patch.errorCount !== undefined) data.errorCount = patch.errorCount;
  if (patch.retryAt !== undefined) data.retryAt = patch.retryAt;
  if (patch.noProgressSince !== undefined) data.noProgressSince = patch.noProgressSince;
  if (patch.activeSince !== undefined) data.activeSince = patch.activeSince;
  if (patch.activeSeconds !== undefined) data.activeSeconds = patch.activeSeconds;
  if (patch.transferCompletedAt !== undefined) data.transferCompletedAt = patch.transferCompletedAt;
  if (patch.error !== undefined) {
    data.errorContext = patch.error?.context ?? null;
    data.errorCode = patch.error?.code ?? null;
    data.errorMessage = patch.error?.message ?? null;
    data.errorFileId = patch.error?.fileId ?? null;
    data.errorHttpStatus = patch.error?.httpStatus ?? null;
  }
  return data;
}

/** Applies a patch to an in-memory row (to chain several decisions in one transaction). */
export function applyPatch(job: Job, patch: JobPatch): Job {
  const next = { ...job, ...(patchToData(patch) as Partial<Job>) };
  return next;
}
