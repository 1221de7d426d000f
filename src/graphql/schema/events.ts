// JobStateChange and the jobStateChanged subscription, fed from the committed JobEvent log (see
// src/events/feed.ts). The cursor is the event's sequence number as a decimal string.
import { GraphQLError } from "graphql";
import { builder } from "../builder.js";
import { encodeId, jobUuid } from "../ids.js";
import { me } from "../context.js";
import { subscriberStream } from "../streams.js";
import { canAccess, ownerScope } from "../../auth/policy.js";
import { JobEventKindEnum, JobStateEnum } from "./enums.js";
import { JobErrorRef, JobRef, errorOf } from "./job.js";
import { jobAtEvent, type JobEvent } from "../../store/events.js";
import type { JobEventKind } from "../../generated/prisma/enums.js";
import { progressMessageOf, type ProgressMessage } from "../../events/progress.js";

/** Event kinds that are state transitions (creation counts: none -> SUSPENDED). */
export const STATE_KINDS: ReadonlySet<JobEventKind> = new Set(["CREATED", "STATE_CHANGED"]);

export function parseCursor(after: string | null | undefined): bigint | null {
  if (after === null || after === undefined) return null;
  if (!/^\d{1,19}$/.test(after) || BigInt(after) > 9223372036854775807n) {
    throw new GraphQLError(`not a valid event cursor: ${JSON.stringify(after.slice(0, 40))}; use a cursor from a JobStateChange, or "0" for the whole history`, {
      extensions: { code: "BAD_USER_INPUT" },
    });
  }
  return BigInt(after);
}

const JobStateChangeRef = builder.objectRef<JobEvent>("JobStateChange").implement({
  description: "A committed state transition of a job, in commit order.",
  fields: (t) => ({
    cursor: t.string({
      description: "Pass as `after` to resume the stream right after this event.",
      resolve: (e) => e.seq.toString(),
    }),
    job: t.field({
      type: JobRef,
      description: "The job as this transition left it.",
      resolve: async (e, _a, ctx) => jobAtEvent(e) ?? (await ctx.prisma.job.findUniqueOrThrow({ where: { id: e.jobId } })),
    }),
    previousState: t.field({ type: JobStateEnum, nullable: true, description: "Null when the job was created.", resolve: (e) => e.previousState }),
    state: t.field({ type: JobStateEnum, resolve: (e) => e.state }),
    at: t.field({ type: "DateTime", resolve: (e) => e.at }),
    error: t.field({ type: JobErrorRef, nullable: true, resolve: (e) => errorOf(e) }),
    kind: t.field({ type: JobEventKindEnum, resolve: (e) => e.kind }),
    actor: t.string({ nullable: true, description: "Who made the call (null for the service itself).", resolve: (e) => e.actor }),
  }),
});

builder.queryField("eventCursor", (t) =>
  t.string({
    description:
      "The cursor of the newest committed event: subscribe with `after` set to it to receive exactly what commits from now on, and resume from it after a disconnection even if no event arrived meanwhile.",
    resolve: async (_r, _a, ctx) => {
      me(ctx);
      const row = await ctx.prisma.jobEvent.findFirst({ orderBy: { seq: "desc" }, select: { seq: true } });
      return (row?.seq ?? 0n).toString();
    },
  }),
);

builder.subscriptionField("jobStateChanged", (t) =>
  t.field({
    type: JobStateChangeRef,
    description:
      "Every state transition of one job (jobId) or of every job the caller may see. With `after`, the transitions committed after that cursor are replayed first, then live ones follow: no gap, no duplicate, in commit order.",
    args: {
      jobId: t.arg.id({ required: false }),
      after: t.arg.string({ required: false, description: "A cursor from an earlier JobStateChange; \"0\" replays the whole history." }),
    },
    subscribe: async (_root, args, ctx) => {
      const principal = me(ctx);
      const after = parseCursor(args.after);
      let jobId: string | undefined;
      if (args.jobId) {
        jobId = jobUuid(args.jobId);
        const job = await ctx.prisma.job.findUnique({ where: { id: jobId }, select: { owner: true } });
        if (!job || !canAccess(principal, job.owner)) throw new GraphQLError(`no job with id ${args.jobId}`, { extensions: { code: "NOT_FOUND" } });
      }
      // Every event is filtered per subscriber: a user receives only events of its own jobs.
      const owner = principal.role === "ADMIN" ? undefined : ownerScope(principal);
      return subscriberStream(ctx, ctx.feed.subscribe({ jobId, after, kinds: STATE_KINDS, owner }));
    },
    resolve: (e) => e,
  }),
);

const JobProgressUpdateRef = builder.objectRef<ProgressMessage>("JobProgressUpdate").implement({
  description: "A job's progress, pushed at most every 500 ms per job and at every file boundary.",
  fields: (t) => ({
    jobId: t.id({ resolve: (m) => encodeId("Job", m.jobId) }),
    state: t.field({ type: JobStateEnum, resolve: (m) => m.state as never }),
    bytesTransferred: t.field({ type: "BigInt", resolve: (m) => BigInt(m.bytesTransferred) }),
    bytesTotal: t.field({ type: "BigInt", nullable: true, resolve: (m) => (m.bytesTotal === null ? null : BigInt(m.bytesTotal)) }),
    filesTransferred: t.int({ resolve: (m) => m.filesTransferred }),
    filesTotal: t.int({ resolve: (m) => m.filesTotal }),
    bytesPerSecond: t.float({ description: "Current rate over the last report interval.", resolve: (m) => m.bytesPerSecond }),
    at: t.field({ type: "DateTime", resolve: (m) => new Date(m.at) }),
  }),
});

builder.subscriptionField("jobProgress", (t) =>
  t.field({
    type: JobProgressUpdateRef,
    description:
      "Progress of one job (jobId) or of every job the caller may see: the current figures first (with jobId), then every update. Updates are not replayed: the job's progress field always holds the latest.",
    args: { jobId: t.arg.id({ required: false }) },
    subscribe: async (_root, args, ctx) => {
      const principal = me(ctx);
      const owner = principal.role === "ADMIN" ? undefined : ownerScope(principal);
      const stream = ctx.feed.progress.subscribe({ jobId: args.jobId ? jobUuid(args.jobId) : undefined, owner });
      if (!args.jobId) return subscriberStream(ctx, stream);
      const jobId = jobUuid(args.jobId);
      const job = await ctx.prisma.job.findUnique({ where: { id: jobId } });
      if (!job || !canAccess(principal, job.owner)) {
        stream.close();
        throw new GraphQLError(`no job with id ${args.jobId}`, { extensions: { code: "NOT_FOUND" } });
      }
      return subscriberStream(ctx, stream, [progressMessageOf(job, 0)]);
    },
    resolve: (m) => m,
  }),
);
