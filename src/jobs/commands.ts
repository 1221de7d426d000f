// The commands: the only place that decides (src/domain), persists (src/store) and publishes
// (src/events), in that order. Each command is one transaction that
//   1. locks the job row (SELECT ... FOR UPDATE),
//   2. asks the pure state machine what the call means in the job's current state,
//   3. writes the row with compare-and-set on its version and appends the JobEvent,
//   4. and only after COMMIT pokes the event feed (the NOTIFY sent inside the transaction reaches
//      other processes only if it commits).
// Concurrent calls on one job queue on the row lock, so none is lost and every event is logged.
import { randomUUID } from "node:crypto";
import { Prisma, type Job } from "../generated/prisma/client.js";
import { notFound, patchToData, refuse, snapshotOf } from "./transition.js";
import type { JobPriority, JobType } from "../generated/prisma/enums.js";
import { DomainError } from "../domain/errors.js";
import { decide, DEFAULTS, type Decision, type JobEvent as DomainEvent } from "../domain/job-state.js";
import {
  validateDescription,
  validateDisplayName,
  validateFiles,
  validateRetryDelay,
  validateSeconds,
  validateHeaders,
  validateCredentials,
  validateRate,
  type FileSpec,
  type HttpHeader,
  type Credentials,
} from "../domain/validation.js";
import { appendEvents, type Tx } from "../store/events.js";
import { filesOfJob, insertFiles, insertJob, lockJob, markFilesCompleted, updateJob } from "../store/jobs.js";
import type { PrismaClient } from "../store/db.js";
import type { FileStorage } from "../files/storage.js";
import type { Logger } from "../logger.js";
import { canAccess, requireAdmin, type Role } from "../auth/policy.js";

export interface CommandDeps {
  prisma: PrismaClient;
  storage: FileStorage;
  /** Called after every commit that appended events (wakes this process's event feed at once). */
  afterCommit?: () => void;
  logger?: Logger;
  now?: () => Date;
  limits?: { retryDelayFloorSeconds?: number; maxFilesPerJob?: number; maxJobsPerUser?: number };
  /** Refuses a remote URL the operator does not allow (literal addresses); returns an error message or null. */
  checkUrl?: (url: URL) => string | null;
}

export interface CreateJobInput {
  displayName: string;
  description?: string | null;
  type?: JobType | null;
  priority?: JobPriority | null;
  minimumRetryDelay?: number | null;
  noProgressTimeout?: number | null;
  maximumDownloadTime?: number | null;
  maxBytesPerSecond?: bigint | null;
  httpHeaders?: HttpHeader[] | null;
  credentials?: Credentials | null;
  files?: FileSpec[] | null;
}

export interface UpdateJobInput {
  displayName?: string | null;
  description?: string | null;
  priority?: JobPriority | null;
  minimumRetryDelay?: number | null;
  noProgressTimeout?: number | null;
  maximumDownloadTime?: number | null;
  /** bytes/s; 0 clears the limit */
  maxBytesPerSecond?: bigint | null;
  /** replaces the custom headers ([] clears them) */
  httpHeaders?: HttpHeader[] | null;
  /** replaces the credentials; clearCredentials removes them */
  credentials?: Credentials | null;
  clearCredentials?: boolean | null;
}

export interface CommandResult {
  job: Job;
  /** BITS success-with-warning codes, e.g. PARTIAL_COMPLETE, UNABLE_TO_DELETE_FILES. */
  warnings: string[];
}

/** Who is calling: the owner of new jobs, checked against every job it touches, recorded on every event. */
export interface Actor {
  user: string;
  role: Role;
}

export function createCommands(deps: CommandDeps) {
  const { prisma, storage } = deps;
  const now = deps.now ?? (() => new Date());
  const floor = deps.limits?.retryDelayFloorSeconds ?? DEFAULTS.retryDelayFloorSeconds;
  const maxFiles = deps.limits?.maxFilesPerJob ?? DEFAULTS.maxFilesPerJob;
  const maxJobs = deps.limits?.maxJobsPerUser ?? 60;
  const filesLimit = (actor: Actor) => (actor.role === "ADMIN" ? Number.MAX_SAFE_INTEGER : maxFiles); // admins are exempt, as in BITS

  /**
   * Locks the job and checks the caller may act on it. Another user's job is indistinguishable from
   * a missing one: both are NOT_FOUND.
   */
  async function lockVisible(tx: Tx, id: string, actor: Actor): Promise<Job> {
    const job = await lockJob(tx, id);
    if (!job || !canAccess({ ...actor, tokenId: "" }, job.owner)) throw notFound(id);
    return job;
  }

  /** Remote URLs: the operator's destination policy (literal addresses are refused here already). */
  function checkUrls(files: readonly FileSpec[]): void {
    if (!deps.checkUrl) return;
    files.forEach((f, i) => {
      const why = deps.checkUrl!(new URL(f.remoteUrl));
      if (why) throw new DomainError("BAD_USER_INPUT", `files[${i}].remoteUrl: ${why}`);
    });
  }

  /**
   * Serialises one user's createJob/addFiles (quota and destination checks must see each other),
   * then refuses destinations another unfinished job of this user already targets.
   */
  async function lockUserAndCheckPaths(tx: Tx, owner: string, localPaths: string[], exceptJob: string | null): Promise<void> {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtext(${"haul:user:" + owner}))`;
    if (localPaths.length === 0) return;
    const taken = await tx.$queryRaw<{ local_path: string }[]>`
      SELECT f.local_path FROM file f JOIN job j ON j.id = f.job_id
       WHERE j.owner = ${owner} AND j.state NOT IN ('ACKNOWLEDGED', 'CANCELLED')
         AND (${exceptJob}::uuid IS NULL OR j.id <> ${exceptJob}::uuid)
         AND f.local_path IN (SELECT json_array_elements_text(${JSON.stringify(localPaths)}::json))
       LIMIT 1`;
    if (taken.length) {
      throw new DomainError(
        "BAD_USER_INPUT",
        `localPath ${JSON.stringify(taken[0]!.local_path)} is already the destination of another unfinished job; complete or cancel that job, or choose another path`,
      );
    }
  }

  /** Runs `fn` in a transaction; pokes the feed after a commit that wrote events. */
  async function transact<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const result = await prisma.$transaction(fn, { timeout: 15_000, maxWait: 15_000 });
    deps.afterCommit?.();
    return result;
  }

  /** Lock, decide, write with compare-and-set, log. The shared shape of the state-changing calls. */
  async function transition(
    tx: Tx,
    id: string,
    event: DomainEvent,
    actor: Actor,
  ): Promise<{ before: Job; after: Job; decision: Exclude<Decision, { kind: "refused" }> }> {
    const before = await lockVisible(tx, id, actor);
    const at = now();
    const decision = decide(snapshotOf(before), event, at);
    if (decision.kind === "refused") refuse(decision);
    if (decision.kind === "unchanged" && Object.keys(decision.patch).length === 0) {
      return { before, after: before, decision }; // a legal no-op (e.g. suspend a suspended job): nothing to write
    }
    const after = await updateJob(tx, before, { ...patchToData(decision.patch), modifiedAt: at });
    if (decision.kind === "transition") {
      await appendEvents(tx, [{ job: after, kind: "STATE_CHANGED", previousState: before.state, actor: actor.user }]);
    }
    return { before, after, decision };
  }

  return {
    async createJob(input: CreateJobInput, actor: Actor): Promise<CommandResult> {
      const type = input.type ?? "DOWNLOAD";
      if (type !== "DOWNLOAD") {
        throw new DomainError("BAD_USER_INPUT", `type ${type} is not supported yet: haul transfers DOWNLOAD jobs`);
      }
      const displayName = validateDisplayName(input.displayName);
      const description = validateDescription(input.description ?? "");
      const files = input.files?.length ? validateFiles(input.files) : [];
      if (files.length > filesLimit(actor)) {
        throw new DomainError("TOO_MANY_FILES", `a job holds at most ${maxFiles} files; split the ${files.length} files over several jobs`);
      }
      checkUrls(files);
      for (const f of files) await storage.assertNoSymlink(actor.user, f.localPath);
      const at = now();
      const id = randomUUID();
      const job = await transact(async (tx) => {
        await lockUserAndCheckPaths(
          tx,
          actor.user,
          files.map((f) => f.localPath),
          null,
        );
        if (actor.role !== "ADMIN") {
          const unfinished = await tx.job.count({ where: { owner: actor.user, state: { notIn: ["ACKNOWLEDGED", "CANCELLED"] } } });
          if (unfinished >= maxJobs) {
            throw new DomainError(
              "TOO_MANY_JOBS",
              `you have ${unfinished} unfinished jobs, the limit is ${maxJobs} (BITS MaxJobsPerUser); complete or cancel some first`,
            );
          }
        }
        const row = await insertJob(tx, {
          id,
          type,
          displayName,
          description,
          priority: input.priority ?? "NORMAL",
          state: "SUSPENDED",
          owner: actor.user,
          minimumRetryDelay: validateRetryDelay(input.minimumRetryDelay ?? DEFAULTS.minimumRetryDelaySeconds, floor),
          noProgressTimeout: validateSeconds(input.noProgressTimeout ?? DEFAULTS.noProgressTimeoutSeconds, "noProgressTimeout"),
          maximumDownloadTime: validateSeconds(input.maximumDownloadTime ?? DEFAULTS.maximumDownloadTimeSeconds, "maximumDownloadTime"),
          maxBytesPerSecond: validateRate(input.maxBytesPerSecond ?? null),
          httpHeaders: input.httpHeaders?.length ? (validateHeaders(input.httpHeaders) as unknown as Prisma.InputJsonValue) : undefined,
          httpCredentials: input.credentials ? (validateCredentials(input.credentials) as unknown as Prisma.InputJsonValue) : undefined,
          filesTotal: files.length,
          bytesTotal: files.length ? null : 0n,
          createdAt: at,
          modifiedAt: at,
        });
        await insertFiles(
          tx,
          files.map((f, i) => ({ id: randomUUID(), jobId: id, position: i, remoteUrl: f.remoteUrl, localPath: f.localPath, sha256: f.sha256 ?? null, createdAt: at })),
        );
        await appendEvents(tx, [{ job: row, kind: "CREATED", previousState: null, actor: actor.user, details: { files: files.length } }]);
        return row;
      });
      return { job, warnings: [] };
    },

    async addFiles(jobId: string, specs: FileSpec[], actor: Actor): Promise<CommandResult> {
      if (specs.length > filesLimit(actor)) {
        throw new DomainError("TOO_MANY_FILES", `a job holds at most ${maxFiles} files`);
      }
      const checked = validateFiles(specs);
      checkUrls(checked);
      const job = await transact(async (tx) => {
        const before = await lockVisible(tx, jobId, actor);
        const at = now();
        const d = decide(snapshotOf(before), { type: "ADD_FILES", count: specs.length, maxFilesPerJob: filesLimit(actor) }, at);
        if (d.kind === "refused") refuse(d);
        const existing = await filesOfJob(tx, jobId);
        const files = validateFiles(specs, existing.map((f) => f.localPath)); // all or nothing, as AddFileSet
        for (const f of files) await storage.assertNoSymlink(before.owner, f.localPath);
        await lockUserAndCheckPaths(
          tx,
          before.owner,
          files.map((f) => f.localPath),
          jobId,
        );
        await insertFiles(
          tx,
          files.map((f, i) => ({
            id: randomUUID(),
            jobId,
            position: before.filesTotal + i,
            remoteUrl: f.remoteUrl,
            localPath: f.localPath,
            sha256: f.sha256 ?? null,
            createdAt: at,
          })),
        );
        const after = await updateJob(tx, before, {
          ...patchToData(d.patch),
          filesTotal: before.filesTotal + files.length,
          bytesTotal: null, // the new files' sizes are not known until the worker reaches them
          modifiedAt: at,
        });
        await appendEvents(tx, [{ job: after, kind: "FILES_ADDED", previousState: before.state, actor: actor.user, details: { files: files.length } }]);
        return after;
      });
      return { job, warnings: [] };
    },

    async suspendJob(id: string, actor: Actor): Promise<CommandResult> {
      const { after } = await transact((tx) => transition(tx, id, { type: "SUSPEND" }, actor));
      return { job: after, warnings: [] };
    },

    async resumeJob(id: string, actor: Actor): Promise<CommandResult> {
      const { after } = await transact((tx) => transition(tx, id, { type: "RESUME" }, actor));
      return { job: after, warnings: [] };
    },

    /**
     * BITS Complete: renames transferred files to their final names and drops partial ones. If a
     * rename fails the job stays where it was, the files renamed so far are marked completed, and the
     * call fails with FILE_RENAME_FAILED (BITS: "TRANSFERRED -> TRANSFERRED").
     */
    async completeJob(id: string, actor: Actor): Promise<CommandResult> {
      const outcome = await transact(async (tx) => {
        const before = await lockVisible(tx, id, actor);
        const at = now();
        const d = decide(snapshotOf(before), { type: "COMPLETE" }, at);
        if (d.kind === "refused") refuse(d);
        const files = await filesOfJob(tx, id);
        const { renamed, failed } = await storage.commit(before.owner, files.filter((f) => !f.completed));
        if (renamed.length) await markFilesCompleted(tx, renamed);
        if (failed.length) return { failed, job: before, warnings: [] as string[] };
        const after = await updateJob(tx, before, { ...patchToData(d.kind === "transition" ? d.patch : {}), modifiedAt: at });
        await appendEvents(tx, [
          {
            job: after,
            kind: "STATE_CHANGED",
            previousState: before.state,
            actor: actor.user,
            details: { filesCompleted: renamed.length, ...(d.kind === "transition" && d.warning ? { warning: d.warning } : {}) },
          },
        ]);
        return { failed, job: after, warnings: d.kind === "transition" && d.warning ? [d.warning] : [] };
      });
      if (outcome.failed.length) {
        const first = outcome.failed[0]!;
        throw new DomainError(
          "FILE_RENAME_FAILED",
          `${outcome.failed.length} file(s) could not be moved to their final path (first: ${first.error}); fix the destination and call completeJob again`,
        );
      }
      return { job: outcome.job, warnings: outcome.warnings };
    },

    async cancelJob(id: string, actor: Actor): Promise<CommandResult> {
      const { after, decision } = await transact((tx) => transition(tx, id, { type: "CANCEL" }, actor));
      const warnings: string[] = [];
      if (decision.effects.some((e) => e.type === "DELETE_TEMP_FILES")) {
        const files = await prisma.file.findMany({ where: { jobId: id } });
        const failures = await storage.deleteTemps(after.owner, files);
        if (failures) warnings.push("UNABLE_TO_DELETE_FILES");
      }
      return { job: after, warnings };
    },

    async updateJob(id: string, input: UpdateJobInput, actor: Actor): Promise<CommandResult> {
      const data: Prisma.JobUpdateManyMutationInput = {};
      const changed: string[] = [];
      if (input.displayName != null) (data.displayName = validateDisplayName(input.displayName)), changed.push("displayName");
      if (input.description != null) (data.description = validateDescription(input.description)), changed.push("description");
      if (input.priority != null) (data.priority = input.priority), changed.push("priority");
      if (input.minimumRetryDelay != null) (data.minimumRetryDelay = validateRetryDelay(input.minimumRetryDelay, floor)), changed.push("minimumRetryDelay");
      if (input.noProgressTimeout != null) (data.noProgressTimeout = validateSeconds(input.noProgressTimeout, "noProgressTimeout")), changed.push("noProgressTimeout");
      if (input.maximumDownloadTime != null) (data.maximumDownloadTime = validateSeconds(input.maximumDownloadTime, "maximumDownloadTime")), changed.push("maximumDownloadTime");
      if (input.maxBytesPerSecond != null) {
        data.maxBytesPerSecond = input.maxBytesPerSecond === 0n ? null : validateRate(input.maxBytesPerSecond);
        changed.push("maxBytesPerSecond");
      }
      // Secrets: recorded as changed by name only, never by value.
      if (input.httpHeaders != null) {
        const h = validateHeaders(input.httpHeaders);
        data.httpHeaders = h.length ? (h as unknown as Prisma.InputJsonValue) : Prisma.DbNull;
        changed.push("httpHeaders");
      }
      if (input.credentials != null) (data.httpCredentials = validateCredentials(input.credentials) as unknown as Prisma.InputJsonValue), changed.push("credentials");
      else if (input.clearCredentials) (data.httpCredentials = Prisma.DbNull), changed.push("credentials");
      const job = await transact(async (tx) => {
        const before = await lockVisible(tx, id, actor);
        const at = now();
        const d = decide(snapshotOf(before), { type: "UPDATE" }, at);
        if (d.kind === "refused") refuse(d);
        if (changed.length === 0) return before;
        const after = await updateJob(tx, before, { ...data, modifiedAt: at });
        await appendEvents(tx, [{ job: after, kind: "PROPERTIES_CHANGED", previousState: before.state, actor: actor.user, details: { changed } }]);
        return after;
      });
      return { job, warnings: [] };
    },

    /**
     * BITS TakeOwnership (admins only): the job becomes the caller's. As in BITS, credentials and
     * custom headers are stripped (they were the old owner's). Its temporary files move to the new
     * owner's directory (a rename: a transfer writing to one keeps writing to the same file); a
     * running transfer sees the OWNER_CHANGED event and yields, to continue under the new owner.
     */
    async takeOwnership(id: string, actor: Actor): Promise<CommandResult> {
      if (actor.role !== "ADMIN") {
        // A user may not take ownership; and must not learn whether the job exists.
        const visible = await prisma.job.findUnique({ where: { id }, select: { owner: true } });
        if (!visible || visible.owner !== actor.user) throw notFound(id);
        requireAdmin({ ...actor, tokenId: "" }, "takeOwnership");
      }
      const { before, after } = await transact(async (tx) => {
        const before = await lockVisible(tx, id, actor);
        const at = now();
        const d = decide(snapshotOf(before), { type: "TAKE_OWNERSHIP" }, at);
        if (d.kind === "refused") refuse(d);
        if (before.owner === actor.user) return { before, after: before };
        const files = await filesOfJob(tx, id);
        await lockUserAndCheckPaths(
          tx,
          actor.user,
          files.map((f) => f.localPath),
          id,
        );
        const after = await updateJob(tx, before, {
          ...patchToData(d.patch),
          owner: actor.user,
          httpHeaders: Prisma.DbNull,
          httpCredentials: Prisma.DbNull,
          modifiedAt: at,
        });
        await appendEvents(tx, [{ job: after, kind: "OWNER_CHANGED", previousState: before.state, actor: actor.user, details: { from: before.owner } }]);
        return { before, after };
      });
      if (before.owner !== after.owner) {
        const files = await prisma.file.findMany({ where: { jobId: id, transferred: false } });
        await storage.moveTemps(before.owner, after.owner, files);
      }
      return { job: after, warnings: [] };
    },
  };
}

export type Commands = ReturnType<typeof createCommands>;
