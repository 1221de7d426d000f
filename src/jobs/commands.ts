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
import { appendEvents, transactThenPoke, type NewEvent, type Tx } from "../store/events.js";
import { filesOfJob, insertFiles, insertJob, lockJob, lockJobs, markFilesCompleted, updateJob, updateJobs } from "../store/jobs.js";
import type { PrismaClient } from "../store/db.js";
import type { FileStorage } from "../files/storage.js";
import type { Logger } from "../logger.js";
import { canAccess, requireAdmin, type Role } from "../auth/policy.js";

export interface CommandDeps {
  prisma: PrismaClient;
  storage: FileStorage;
  /** Called after every commit that appended events (wakes this process's event feed at once). */
  afterCommit?: (seq: bigint) => void;
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

/** What a batch's per-job work reports: jobs it could not finish, and details for the others' log entries. */
interface WriteOutcome {
  failed: Map<string, DomainError>;
  details?: Map<string, Record<string, unknown>>;
}

/** Jobs (or ids) per batch call. */
export const MAX_BATCH = 500;

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
  function transact<T>(fn: (tx: Tx) => Promise<T>, timeoutMs?: number): Promise<T> {
    return transactThenPoke(prisma, fn, deps.afterCommit, timeoutMs);
  }

  /** Validates one createJob input; `at` prefixes messages with the input's index in a batch. */
  async function prepareJob(input: CreateJobInput, actor: Actor, at: Date, where: string) {
    try {
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
      const id = randomUUID();
      const row: Prisma.JobCreateManyInput = {
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
      };
      const fileRows: Prisma.FileCreateManyInput[] = files.map((f, i) => ({
        id: randomUUID(),
        jobId: id,
        position: i,
        remoteUrl: f.remoteUrl,
        localPath: f.localPath,
        sha256: f.sha256 ?? null,
        createdAt: at,
      }));
      return { row, fileRows };
    } catch (err) {
      if (where && err instanceof DomainError) throw new DomainError(err.code, `${where}: ${err.message}`);
      throw err;
    }
  }

  async function createMany(inputs: CreateJobInput[], actor: Actor, resume: boolean): Promise<Job[]> {
    const at = now();
    const batch = inputs.length > 1;
    const prepared: Awaited<ReturnType<typeof prepareJob>>[] = [];
    for (let i = 0; i < inputs.length; i++) prepared.push(await prepareJob(inputs[i]!, actor, at, batch ? `input[${i}]` : ""));
    const paths = prepared.flatMap((p) => p.fileRows.map((f) => f.localPath));
    const seen = new Set<string>();
    const dup = paths.find((p) => seen.size === seen.add(p).size);
    if (dup !== undefined) {
      throw new DomainError("BAD_USER_INPUT", `localPath ${JSON.stringify(dup)} is the destination of two files of this call; choose another path`);
    }
    return transact(async (tx) => {
      await lockUserAndCheckPaths(tx, actor.user, paths, null);
      if (actor.role !== "ADMIN") {
        const unfinished = await tx.job.count({ where: { owner: actor.user, state: { notIn: ["ACKNOWLEDGED", "CANCELLED"] } } });
        if (unfinished + prepared.length > maxJobs) {
          throw new DomainError(
            "TOO_MANY_JOBS",
            `you have ${unfinished} unfinished jobs${prepared.length > 1 ? ` and asked for ${prepared.length} more` : ""}, the limit is ${maxJobs} (BITS MaxJobsPerUser); complete or cancel some first`,
          );
        }
      }
      const created = prepared.length === 1 ? [await insertJob(tx, prepared[0]!.row)] : await tx.job.createManyAndReturn({ data: prepared.map((p) => p.row) });
      await insertFiles(tx, prepared.flatMap((p) => p.fileRows));
      const byId = new Map(created.map((j) => [j.id, j]));
      const jobs = prepared.map((p) => byId.get(p.row.id!)!);
      const events: NewEvent[] = jobs.map((job) => ({ job, kind: "CREATED", previousState: null, actor: actor.user, details: { files: job.filesTotal } }));
      if (!resume) {
        await appendEvents(tx, events);
        return jobs;
      }
      // Resume each one, as resumeJob would (the state machine decides: EMPTY for a job with no files).
      const updates: { expected: Job; data: Prisma.JobUpdateManyMutationInput }[] = [];
      jobs.forEach((job, i) => {
        const d = decide(snapshotOf(job), { type: "RESUME" }, at);
        if (d.kind === "refused") throw new DomainError(d.code, `${batch ? `input[${i}]: ` : ""}${d.message}`);
        updates.push({ expected: job, data: { ...patchToData(d.patch), modifiedAt: at } });
      });
      const resumed = await updateJobs(tx, updates);
      resumed.forEach((job, i) => events.push({ job, kind: "STATE_CHANGED", previousState: jobs[i]!.state, actor: actor.user }));
      await appendEvents(tx, events);
      return resumed;
    }, Math.min(120_000, 15_000 + 2 * paths.length)); // 10,000 file rows take seconds on a busy machine
  }

  /**
   * One state call on several jobs in one transaction: the rows are locked in id order, each is
   * decided on its own, and each id gets its job or its own error (NOT_FOUND, INVALID_STATE, ...),
   * exactly as the single call would answer it. `write` may do per-job work (completeJob's renames)
   * and return an error for a job it could not finish.
   */
  async function transitionMany(
    ids: string[],
    event: DomainEvent,
    actor: Actor,
    write?: (tx: Tx, jobs: Job[]) => Promise<WriteOutcome>,
  ): Promise<{ results: (CommandResult | DomainError)[]; moved: { before: Job; after: Job; decision: Exclude<Decision, { kind: "refused" }> }[] }> {
    if (ids.length > MAX_BATCH) throw new DomainError("BAD_USER_INPUT", `at most ${MAX_BATCH} ids per call; split the ${ids.length} into several calls`);
    const unique = [...new Set(ids)];
    const outcome = await transact(async (tx) => {
      const rows = await lockJobs(tx, unique);
      const at = now();
      const errors = new Map<string, DomainError>();
      const ready: { job: Job; decision: Exclude<Decision, { kind: "refused" }> }[] = [];
      for (const id of unique) {
        const job = rows.get(id);
        if (!job || !canAccess({ ...actor, tokenId: "" }, job.owner)) {
          errors.set(id, notFound(id));
          continue;
        }
        const d = decide(snapshotOf(job), event, at);
        if (d.kind === "refused") errors.set(id, new DomainError(d.code, d.message));
        else ready.push({ job, decision: d });
      }
      const { failed, details } = write ? await write(tx, ready.map((r) => r.job)) : { failed: new Map<string, DomainError>(), details: undefined };
      for (const [id, e] of failed) errors.set(id, e);
      const toWrite = ready.filter((r) => !failed.has(r.job.id) && !(r.decision.kind === "unchanged" && Object.keys(r.decision.patch).length === 0));
      const written = await updateJobs(
        tx,
        toWrite.map((r) => ({ expected: r.job, data: { ...patchToData(r.decision.patch), modifiedAt: at } })),
      );
      const after = new Map(written.map((j) => [j.id, j]));
      await appendEvents(
        tx,
        toWrite
          .filter((r) => r.decision.kind === "transition")
          .map((r) => {
            const d = r.decision as Extract<Decision, { kind: "transition" }>;
            const extra = { ...details?.get(r.job.id), ...(d.warning ? { warning: d.warning } : {}) };
            return {
              job: after.get(r.job.id)!,
              kind: "STATE_CHANGED" as const,
              previousState: r.job.state,
              actor: actor.user,
              ...(Object.keys(extra).length ? { details: extra } : {}),
            };
          }),
      );
      const moved = ready.filter((r) => !failed.has(r.job.id)).map((r) => ({ before: r.job, after: after.get(r.job.id) ?? r.job, decision: r.decision }));
      return { errors, moved };
    });
    const byId = new Map(outcome.moved.map((m) => [m.before.id, m]));
    const results = ids.map((id): CommandResult | DomainError => {
      const e = outcome.errors.get(id);
      if (e) return e;
      const m = byId.get(id)!;
      return { job: m.after, warnings: m.decision.kind === "transition" && m.decision.warning ? [m.decision.warning] : [] };
    });
    return { results, moved: outcome.moved };
  }

  /** completeJob's file work for several jobs: rename what finished, mark it completed. */
  async function commitFiles(tx: Tx, jobs: Job[]): Promise<WriteOutcome> {
    const failed = new Map<string, DomainError>();
    const details = new Map<string, Record<string, unknown>>();
    if (jobs.length === 0) return { failed, details };
    const files = await tx.file.findMany({ where: { jobId: { in: jobs.map((j) => j.id) }, completed: false }, orderBy: [{ jobId: "asc" }, { position: "asc" }] });
    const renamedAll: string[] = [];
    for (const job of jobs) {
      const { renamed, failed: f } = await storage.commit(job.owner, files.filter((x) => x.jobId === job.id));
      renamedAll.push(...renamed);
      details.set(job.id, { filesCompleted: renamed.length });
      if (f.length) {
        failed.set(
          job.id,
          new DomainError(
            "FILE_RENAME_FAILED",
            `${f.length} file(s) could not be moved to their final path (first: ${f[0]!.error}); fix the destination and call completeJob again`,
          ),
        );
      }
    }
    if (renamedAll.length) await markFilesCompleted(tx, renamedAll);
    return { failed, details };
  }

  /** cancelJob for several jobs: the transition, then (after commit) the temporary files go. */
  async function cancelMany(ids: string[], actor: Actor): Promise<(CommandResult | DomainError)[]> {
    const { results, moved } = await transitionMany(ids, { type: "CANCEL" }, actor);
    const unclean = await dropTemps(moved.filter((m) => m.decision.effects.some((e) => e.type === "DELETE_TEMP_FILES")).map((m) => m.after));
    return results.map((r) => (r instanceof DomainError || !unclean.has(r.job.id) ? r : { ...r, warnings: [...r.warnings, "UNABLE_TO_DELETE_FILES"] }));
  }

  /** A single state call is the batch of one: the same locking, decision, writes and log entry. */
  function one(r: (CommandResult | DomainError)[]): CommandResult {
    const x = r[0]!;
    if (x instanceof DomainError) throw x;
    return x;
  }

  /** cancelJob's clean-up, after commit: the temporary files go. */
  async function dropTemps(jobs: Job[]): Promise<Set<string>> {
    const unclean = new Set<string>();
    if (jobs.length === 0) return unclean;
    const files = await prisma.file.findMany({ where: { jobId: { in: jobs.map((j) => j.id) } } });
    for (const job of jobs) {
      const failures = await storage.deleteTemps(job.owner, files.filter((f) => f.jobId === job.id));
      if (failures) unclean.add(job.id);
    }
    return unclean;
  }

  return {
    async createJob(input: CreateJobInput, actor: Actor): Promise<CommandResult> {
      const [job] = await createMany([input], actor, false);
      return { job: job!, warnings: [] };
    },

    /**
     * Creates several jobs in one transaction, all or nothing (an error names the input's index);
     * with `resume`, each is also resumed in the same transaction (both transitions are logged:
     * CREATED as SUSPENDED, then SUSPENDED -> QUEUED, exactly as createJob + resumeJob).
     */
    async createJobs(inputs: CreateJobInput[], actor: Actor, resume: boolean): Promise<CommandResult[]> {
      if (inputs.length > MAX_BATCH) throw new DomainError("BAD_USER_INPUT", `at most ${MAX_BATCH} jobs per call; split the ${inputs.length} into several calls`);
      const jobs = await createMany(inputs, actor, resume);
      return jobs.map((job) => ({ job, warnings: [] }));
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
      return one((await transitionMany([id], { type: "SUSPEND" }, actor)).results);
    },

    async resumeJob(id: string, actor: Actor): Promise<CommandResult> {
      return one((await transitionMany([id], { type: "RESUME" }, actor)).results);
    },

    /** State calls on several jobs at once: one result (job or error) per id, in the order given. */
    async suspendJobs(ids: string[], actor: Actor): Promise<(CommandResult | DomainError)[]> {
      return (await transitionMany(ids, { type: "SUSPEND" }, actor)).results;
    },

    async resumeJobs(ids: string[], actor: Actor): Promise<(CommandResult | DomainError)[]> {
      return (await transitionMany(ids, { type: "RESUME" }, actor)).results;
    },

    async completeJobs(ids: string[], actor: Actor): Promise<(CommandResult | DomainError)[]> {
      return (await transitionMany(ids, { type: "COMPLETE" }, actor, commitFiles)).results;
    },

    cancelJobs(ids: string[], actor: Actor): Promise<(CommandResult | DomainError)[]> {
      return cancelMany(ids, actor);
    },

    /**
     * BITS Complete: renames transferred files to their final names and drops partial ones. If a
     * rename fails the job stays where it was, the files renamed so far are marked completed, and the
     * call fails with FILE_RENAME_FAILED (BITS: "TRANSFERRED -> TRANSFERRED").
     */
    async completeJob(id: string, actor: Actor): Promise<CommandResult> {
      return one((await transitionMany([id], { type: "COMPLETE" }, actor, commitFiles)).results);
    },

    async cancelJob(id: string, actor: Actor): Promise<CommandResult> {
      return one(await cancelMany([id], actor));
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
