import { GraphQLError } from "graphql";
// Job and File: types, the queries that read them and the mutations that mirror BITS's calls.
import type { Job } from "../../generated/prisma/client.js";
import type { Prisma } from "../../generated/prisma/client.js";
import { builder } from "../builder.js";
import { jobUuid } from "../ids.js";
import { ErrorContextEnum, JobPriorityEnum, JobStateEnum, JobTypeEnum } from "./enums.js";
import type { CommandResult } from "../../jobs/commands.js";
import { isFinal, JOB_STATES, type ErrorContext } from "../../domain/job-state.js";
import { me } from "../context.js";
import { canAccess, ownerScope } from "../../auth/policy.js";
import { cappedJobCount } from "../../store/job-counts.js";
import { narrowJobConnectionQuery, narrowJobQuery, scalarColumns } from "./job-select.js";
import { readJobColumns, readableJobColumns } from "../../store/job-reads.js";

// ---- types ------------------------------------------------------------------------------------

/** jobs.totalCount counts at most this many rows. */
export const TOTAL_COUNT_CAP = 10_000;

const CURSOR = /^GPC:S:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A connection cursor must be one this API handed out; anything else is BAD_USER_INPUT. */
function checkCursors(args: { after?: string | null; before?: string | null }): void {
  for (const c of [args.after, args.before]) {
    if (c == null) continue;
    const decoded = c.length <= 100 ? Buffer.from(c, "base64").toString("utf8") : "";
    if (!CURSOR.test(decoded)) {
      throw new GraphQLError(`not a cursor from this connection: ${JSON.stringify(c.slice(0, 60))}`, { extensions: { code: "BAD_USER_INPUT" } });
    }
  }
}

export interface JobErrorShape {
  context: ErrorContext;
  code: string;
  message: string;
  fileId: string | null;
  httpStatus: number | null;
}

export function errorOf(row: {
  errorContext: ErrorContext | null;
  errorCode: string | null;
  errorMessage: string | null;
  errorFileId: string | null;
  errorHttpStatus: number | null;
}): JobErrorShape | null {
  if (!row.errorCode) return null;
  return {
    context: row.errorContext ?? "UNKNOWN",
    code: row.errorCode,
    message: row.errorMessage ?? "",
    fileId: row.errorFileId,
    httpStatus: row.errorHttpStatus,
  };
}

export const FileRef = builder.prismaNode("File", {
  id: { field: "id" },
  nullable: true,
  // node(id): another user's file is as missing as a file that does not exist
  findUnique: (id, ctx) => (ctx.principal?.role === "ADMIN" ? { id } : { id, job: { owner: ctx.principal?.user ?? "" } }),
  fields: (t) => ({
    job: t.relation("job"),
    remoteUrl: t.exposeString("remoteUrl"),
    localPath: t.exposeString("localPath", { description: "Relative to the owner's directory: the file lands at <storage root>/<owner>/<localPath>." }),
    uuid: t.exposeString("id", { description: "The file's UUID (the id field is its global Relay id)." }),
    position: t.exposeInt("position", { description: "Transfer order inside the job (files go one at a time)." }),
    bytesTotal: t.expose("bytesTotal", { type: "BigInt", nullable: true, description: "Null while the size is unknown." }),
    bytesTransferred: t.expose("bytesTransferred", { type: "BigInt" }),
    transferred: t.exposeBoolean("transferred", { description: "Every byte is in the temporary file." }),
    completed: t.exposeBoolean("completed", { description: "Moved to its final path by completeJob: usable." }),
    sha256: t.exposeString("sha256", { nullable: true, description: "The expected SHA-256; the file counts as transferred only once it matches." }),
  }),
});

const JobProgressRef = builder.objectRef<Job>("JobProgress").implement({
  description: "BITS BG_JOB_PROGRESS.",
  fields: (t) => ({
    bytesTotal: t.field({
      type: "BigInt",
      nullable: true,
      description: "Null while the size of any file is unknown (BITS BG_SIZE_UNKNOWN).",
      resolve: (j) => j.bytesTotal,
    }),
    bytesTransferred: t.field({ type: "BigInt", resolve: (j) => j.bytesTransferred }),
    filesTotal: t.int({ resolve: (j) => j.filesTotal }),
    filesTransferred: t.int({ resolve: (j) => j.filesTransferred }),
  }),
});

const JobTimesRef = builder.objectRef<Job>("JobTimes").implement({
  description: "BITS BG_JOB_TIMES.",
  fields: (t) => ({
    createdAt: t.field({ type: "DateTime", resolve: (j) => j.createdAt }),
    modifiedAt: t.field({ type: "DateTime", resolve: (j) => j.modifiedAt }),
    transferCompletedAt: t.field({ type: "DateTime", nullable: true, resolve: (j) => j.transferCompletedAt }),
  }),
});

export const JobErrorRef = builder.objectRef<JobErrorShape>("JobError").implement({
  description: "The last error (BITS IBackgroundCopyError).",
  fields: (t) => ({
    context: t.field({ type: ErrorContextEnum, resolve: (e) => e.context }),
    code: t.exposeString("code", { description: "A stable code, e.g. HTTP_404, CONNECTION_RESET, NO_PROGRESS." }),
    message: t.exposeString("message"),
    httpStatus: t.exposeInt("httpStatus", { nullable: true }),
    file: t.prismaField({
      type: "File",
      nullable: true,
      description: "The file the error is about; null when it is not about a file.",
      resolve: (query, e, _args, ctx) => (e.fileId ? ctx.prisma.file.findUnique({ ...query, where: { id: e.fileId } }) : null),
    }),
  }),
});

export const JobRef = builder.prismaNode("Job", {
  id: { field: "id" },
  nullable: true,
  // node(id): another user's job is as missing as a job that does not exist
  findUnique: (id, ctx) => (ctx.principal?.role === "ADMIN" ? { id } : { id, owner: ctx.principal?.user ?? "" }),
  fields: (t) => ({
    uuid: t.exposeString("id", { description: "The job's UUID (the id field is its global Relay id; both are accepted as job ids)." }),
    displayName: t.exposeString("displayName"),
    description: t.exposeString("description", { nullable: true }),
    type: t.expose("type", { type: JobTypeEnum }),
    priority: t.expose("priority", { type: JobPriorityEnum }),
    state: t.expose("state", { type: JobStateEnum }),
    owner: t.exposeString("owner"),
    progress: t.field({ type: JobProgressRef, resolve: (j) => j }),
    times: t.field({ type: JobTimesRef, resolve: (j) => j }),
    error: t.field({ type: JobErrorRef, nullable: true, resolve: (j) => errorOf(j) }),
    errorCount: t.exposeInt("errorCount"),
    minimumRetryDelay: t.exposeInt("minimumRetryDelay", { description: "Seconds to wait before retrying after a transient error." }),
    noProgressTimeout: t.exposeInt("noProgressTimeout", {
      description: "Seconds without progress after which a transient error becomes fatal (0: every error is fatal).",
    }),
    maximumDownloadTime: t.exposeInt("maximumDownloadTime", {
      description: "Seconds the job may spend connecting and transferring before it fails.",
    }),
    retryAt: t.expose("retryAt", { type: "DateTime", nullable: true, description: "When a TRANSIENT_ERROR job will be retried." }),
    maxBytesPerSecond: t.expose("maxBytesPerSecond", { type: "BigInt", nullable: true, description: "This job's bandwidth cap; null when none." }),
    hasCredentials: t.boolean({
      description: "Whether credentials are set. The credentials and custom headers themselves are write-only.",
      resolve: (j) => j.httpCredentials != null,
    }),
    httpHeaderNames: t.stringList({
      description: "Names of the custom request headers (their values are write-only).",
      resolve: (j) => ((j.httpHeaders as { name: string }[] | null) ?? []).map((h) => h.name),
    }),
    files: t.relatedConnection(
      "files",
      {
        cursor: "id",
        totalCount: true,
        query: (args) => {
          checkCursors(args);
          return { orderBy: { position: "asc" } };
        },
      },
      { name: "FileConnection" },
      { name: "FileEdge" },
    ),
  }),
});

// ---- queries ----------------------------------------------------------------------------------

const JobFilter = builder.inputType("JobFilter", {
  fields: (t) => ({
    states: t.field({
      type: [JobStateEnum],
      required: false,
      description:
        "Only jobs in these states. When omitted, finished jobs (ACKNOWLEDGED, CANCELLED) are left out, as BITS leaves them out of EnumJobs; name them here to list them.",
    }),
    owner: t.string({ required: false, description: "Only jobs of this owner (another user's: ADMIN only)." }),
    allUsers: t.boolean({ required: false, description: "Every user's jobs (ADMIN only; FORBIDDEN otherwise), as bitsadmin /list /allusers." }),
  }),
});

type JobFilterArg = { states?: (typeof JOB_STATES)[number][] | null; owner?: string | null; allUsers?: boolean | null } | null | undefined;

/** The states a listing shows: the filter's, or every unfinished state when it names none. */
export function listedStates(filter: JobFilterArg): (typeof JOB_STATES)[number][] {
  return filter?.states?.length ? filter.states : JOB_STATES.filter((s) => !isFinal(s));
}

/** The rows a caller may list: its own jobs, or (ADMIN with allUsers) everyone's. */
function jobWhere(filter: JobFilterArg, owner: string | undefined): Prisma.JobWhereInput {
  const where: Prisma.JobWhereInput = { state: { in: listedStates(filter) } };
  if (owner !== undefined) where.owner = owner;
  return where;
}

builder.queryField("job", (t) =>
  t.prismaField({
    type: "Job",
    nullable: true,
    description: "One job by id (a global id or the job's UUID); null when there is none.",
    args: { id: t.arg.id({ required: true }) },
    resolve: async (query, _root, args, ctx, info) => {
      const id = jobUuid(args.id);
      const narrowed = narrowJobQuery(query, info);
      // Columns only (the common case): one statement through the driver, without Prisma's engine.
      const columns = scalarColumns(narrowed);
      const job =
        columns && readableJobColumns(columns)
          ? ((await readJobColumns(ctx.db, id, columns)) as Job | null)
          : await ctx.prisma.job.findUnique({ ...narrowed, where: { id } });
      return job && canAccess(me(ctx), job.owner) ? job : null; // another user's job looks missing
    },
  }),
);

builder.queryField("jobs", (t) =>
  t.prismaConnection(
    {
      type: "Job",
      cursor: "id",
      defaultSize: 50,
      maxSize: 200,
      description: `Jobs, oldest first, as a cursor connection. totalCount is exact up to ${TOTAL_COUNT_CAP.toLocaleString("en")} and reads ${TOTAL_COUNT_CAP.toLocaleString("en")} above that (counting further would scan every matching row): narrow the filter for an exact figure.`,
      args: { filter: t.arg({ type: JobFilter, required: false }) },
      resolve: (query, _root, args, ctx, info) => {
        checkCursors(args);
        return ctx.prisma.job.findMany({ ...narrowJobConnectionQuery(query, info), where: jobWhere(args.filter, ownerScope(me(ctx), args.filter ?? {})), orderBy: [{ createdAt: "asc" }, { id: "asc" }] });
      },
      // Capped, so a page never turns into a count of a million rows (see the connection's description):
      // the same conditions as jobWhere, counted by a LIMIT without ORDER BY (src/store/job-counts.ts).
      totalCount: (_conn, args, ctx) =>
        cappedJobCount(ctx.prisma, { states: listedStates(args.filter), owner: ownerScope(me(ctx), args.filter ?? {}) }, TOTAL_COUNT_CAP),
    },
    { name: "JobConnection" },
    { name: "JobEdge" },
  ),
);

// ---- mutations --------------------------------------------------------------------------------

const FileInput = builder.inputType("FileInput", {
  fields: (t) => ({
    remoteUrl: t.string({ required: true, description: "http or https, at most 2,200 characters." }),
    localPath: t.string({ required: true, description: "Relative to the storage root; no '..'." }),
    sha256: t.string({ required: false, description: "Expected SHA-256 (hex) of the content: the file is verified before it counts as transferred." }),
  }),
});

const HttpHeaderInput = builder.inputType("HttpHeaderInput", {
  fields: (t) => ({ name: t.string({ required: true }), value: t.string({ required: true }) }),
});

const CredentialsInput = builder.inputType("CredentialsInput", {
  description: "HTTP basic-auth credentials. Write-only: never returned, never logged.",
  fields: (t) => ({ username: t.string({ required: true }), password: t.string({ required: true }) }),
});

export const CreateJobInput = builder.inputType("CreateJobInput", {
  fields: (t) => ({
    displayName: t.string({ required: true, description: "At most 256 characters." }),
    description: t.string({ required: false, description: "At most 1,024 characters." }),
    type: t.field({ type: JobTypeEnum, required: false, description: "DOWNLOAD (the default; the only type haul transfers so far)." }),
    priority: t.field({ type: JobPriorityEnum, required: false, description: "NORMAL by default." }),
    minimumRetryDelay: t.int({ required: false, description: "Seconds, default 600; values below the floor (5 s) are raised to it." }),
    noProgressTimeout: t.int({ required: false, description: "Seconds, default 1,209,600 (14 days)." }),
    maximumDownloadTime: t.int({ required: false, description: "Seconds, default 7,776,000 (90 days)." }),
    maxBytesPerSecond: t.field({ type: "BigInt", required: false, description: "Bandwidth cap for this job (at least 1024); none by default." }),
    httpHeaders: t.field({ type: [HttpHeaderInput], required: false, description: "Custom request headers. Write-only." }),
    credentials: t.field({ type: CredentialsInput, required: false }),
    files: t.field({ type: [FileInput], required: false }),
  }),
});

const UpdateJobInput = builder.inputType("UpdateJobInput", {
  description: "Only the fields given change.",
  fields: (t) => ({
    displayName: t.string({ required: false }),
    description: t.string({ required: false }),
    priority: t.field({ type: JobPriorityEnum, required: false }),
    minimumRetryDelay: t.int({ required: false }),
    noProgressTimeout: t.int({ required: false }),
    maximumDownloadTime: t.int({ required: false }),
    maxBytesPerSecond: t.field({ type: "BigInt", required: false, description: "0 removes the cap." }),
    httpHeaders: t.field({ type: [HttpHeaderInput], required: false, description: "Replaces the custom headers; [] removes them." }),
    credentials: t.field({ type: CredentialsInput, required: false, description: "Replaces the credentials." }),
    clearCredentials: t.boolean({ required: false, description: "Removes the credentials." }),
  }),
});

export const JobPayload = builder.objectRef<CommandResult>("JobPayload").implement({
  fields: (t) => ({
    job: t.field({ type: JobRef, resolve: (p) => p.job }),
    warnings: t.stringList({
      description: "Success with a warning, as BITS's BG_S_ codes: PARTIAL_COMPLETE, UNABLE_TO_DELETE_FILES.",
      resolve: (p) => p.warnings,
    }),
  }),
});

builder.mutationFields((t) => ({
  createJob: t.field({
    type: JobPayload,
    description: "Creates a job. New jobs start SUSPENDED: add files if needed, then resumeJob.",
    args: { input: t.arg({ type: CreateJobInput, required: true }) },
    resolve: (_r, { input }, ctx) => ctx.commands.createJob(input, me(ctx)),
  }),
  addFiles: t.field({
    type: JobPayload,
    description: "Adds files to a job that is not finished; all or nothing.",
    args: { jobId: t.arg.id({ required: true }), files: t.arg({ type: [FileInput], required: true }) },
    resolve: (_r, args, ctx) => ctx.commands.addFiles(jobUuid(args.jobId), args.files, me(ctx)),
  }),
  suspendJob: t.field({
    type: JobPayload,
    description: "Stops the job's transfers; a no-op on a suspended job.",
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, args, ctx) => ctx.commands.suspendJob(jobUuid(args.id), me(ctx)),
  }),
  resumeJob: t.field({
    type: JobPayload,
    description: "Queues the job for transfer (retries at once from TRANSIENT_ERROR or ERROR). EMPTY when it has no files.",
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, args, ctx) => ctx.commands.resumeJob(jobUuid(args.id), me(ctx)),
  }),
  completeJob: t.field({
    type: JobPayload,
    description:
      "Makes the transferred files visible under their final names and ends the job (ACKNOWLEDGED). Files not fully transferred are dropped (warning PARTIAL_COMPLETE).",
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, args, ctx) => ctx.commands.completeJob(jobUuid(args.id), me(ctx)),
  }),
  cancelJob: t.field({
    type: JobPayload,
    description: "Ends the job (CANCELLED) and deletes its temporary files.",
    args: { id: t.arg.id({ required: true }) },
    resolve: (_r, args, ctx) => ctx.commands.cancelJob(jobUuid(args.id), me(ctx)),
  }),
  takeOwnership: t.field({
    type: JobPayload,
    description:
      "Makes the caller (an ADMIN) the job's owner, as BITS TakeOwnership; strips its credentials and custom headers. FORBIDDEN for users.",
    args: { jobId: t.arg.id({ required: true }) },
    resolve: (_r, args, ctx) => ctx.commands.takeOwnership(jobUuid(args.jobId), me(ctx)),
  }),
  updateJob: t.field({
    type: JobPayload,
    description: "Sets job properties (BITS Set*). Not allowed on finished jobs.",
    args: { id: t.arg.id({ required: true }), input: t.arg({ type: UpdateJobInput, required: true }) },
    resolve: (_r, args, ctx) => ctx.commands.updateJob(jobUuid(args.id), args.input, me(ctx)),
  }),
}));
