// Batch mutations: the same calls as createJob / suspendJob / resumeJob / completeJob / cancelJob,
// for many jobs in one request and one transaction. A client that drives thousands of jobs (an ops
// script, the lifecycle benchmark) pays one round trip and one commit per batch instead of per job.
//
// createJobs is all or nothing (an error names the input's index). The state calls answer per id,
// in the order given: a job, or null with an error at that index (path [field, i]) carrying the
// same code and message the single call would give (NOT_FOUND, INVALID_STATE, FILE_RENAME_FAILED...).
import { builder } from "../builder.js";
import { me } from "../context.js";
import { jobUuid } from "../ids.js";
import { CreateJobInput, JobPayload } from "./job.js";
import { MAX_BATCH, type CommandResult } from "../../jobs/commands.js";
import type { Context } from "../context.js";
import { apiError } from "../errors.js";

type Call = "suspendJobs" | "resumeJobs" | "completeJobs" | "cancelJobs";

/** Runs a batch state call; malformed ids get their own BAD_USER_INPUT, the others go to the command. */
async function perId(ctx: Context, ids: readonly string[], call: Call): Promise<(CommandResult | Error)[]> {
  if (ids.length > MAX_BATCH) throw apiError("BAD_USER_INPUT", `at most ${MAX_BATCH} ids per call; split the ${ids.length} into several calls`);
  const out: (CommandResult | Error | null)[] = ids.map(() => null);
  const valid: { i: number; id: string }[] = [];
  ids.forEach((raw, i) => {
    try {
      valid.push({ i, id: jobUuid(raw) });
    } catch (err) {
      out[i] = err as Error;
    }
  });
  if (valid.length) {
    const results = await ctx.commands[call](
      valid.map((v) => v.id),
      me(ctx),
    );
    valid.forEach((v, k) => (out[v.i] = results[k]!));
  }
  return out as (CommandResult | Error)[];
}

const stateCall = (name: Call, what: string) =>
  builder.mutationField(name, (t) =>
    t.field({
      type: [JobPayload],
      nullable: { list: false, items: true },
      description: `${what} One transaction for the whole batch (at most ${MAX_BATCH} ids); one result per id, in order: the job, or null with an error at that index carrying the code the single call would give.`,
      args: { ids: t.arg.idList({ required: true }) },
      // An Error in the list is reported by graphql-js as that item's error (path [field, index]).
      resolve: (_r, args, ctx) => perId(ctx, args.ids.map(String), name) as never,
    }),
  );

stateCall("suspendJobs", "suspendJob for several jobs.");
stateCall("resumeJobs", "resumeJob for several jobs.");
stateCall("completeJobs", "completeJob for several jobs.");
stateCall("cancelJobs", "cancelJob for several jobs.");

builder.mutationField("createJobs", (t) =>
  t.field({
    type: [JobPayload],
    description: `createJob for several jobs (at most ${MAX_BATCH}), all or nothing, in one transaction; an error names the input's index. With resume: true each job is also resumed (as resumeJob; both transitions are logged).`,
    args: {
      input: t.arg({ type: [CreateJobInput], required: true }),
      resume: t.arg.boolean({ required: false, defaultValue: false }),
    },
    resolve: (_r, args, ctx) => ctx.commands.createJobs(args.input, me(ctx), args.resume ?? false),
  }),
);
