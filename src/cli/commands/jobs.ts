// Job verbs: create, add, resume, suspend, complete, cancel, set (bitsadmin /create /addfile /resume
// /suspend /complete /cancel /set*), list and info (bitsadmin /list /info, Get-BitsTransfer).
import path from "node:path";
import type { Command } from "commander";
import type { Api } from "../client.js";
import { CliError } from "../client.js";
import {
  AddFilesMutation,
  CancelJobMutation,
  CompleteJobMutation,
  CreateJobMutation,
  JobQuery,
  JobsQuery,
  ResumeJobMutation,
  SuspendJobMutation,
  UpdateJobMutation,
} from "../documents.js";
import type { ResultOf, VariablesOf } from "../graphql.js";
import {
  addJobPropertyOptions,
  jobPropertiesInput,
  parsePositiveInt,
  parseSha256,
  parseStates,
  usageError,
  type JobPropertyOptions,
  type JobState,
} from "../options.js";
import { details, formatBytes, formatDuration, formatProgress, formatTime, printJson, table, truncate } from "../format.js";
import type { CliContext } from "../main.js";

type Payload = { warnings: string[]; job: { id: string; displayName: string; state: string; owner: string } };

export function printWarnings(warnings: readonly string[]): void {
  for (const w of warnings) process.stderr.write(`haul: warning: ${w}\n`);
}

/** "<id>  <STATE>" on stdout (or the data as JSON), warnings on stderr. */
function printPayload(payload: Payload, data: unknown, json: boolean | undefined): void {
  if (json) printJson(data);
  else process.stdout.write(`${payload.job.id}  ${payload.job.state}\n`);
  printWarnings(payload.warnings);
}

/** Pairs "<url> <localPath> <url> <localPath> ..." into FileInputs. */
function filePairs(values: string[], what: string): { remoteUrl: string; localPath: string }[] {
  if (values.length % 2 !== 0) throw usageError(`${what}: give pairs of <url> <localPath> (got ${values.length} values)`);
  const out: { remoteUrl: string; localPath: string }[] = [];
  for (let i = 0; i < values.length; i += 2) out.push({ remoteUrl: values[i]!, localPath: values[i + 1]! });
  return out;
}

/** A job that is missing (or another user's): the API answers null; say so the way mutations do. */
export function notFound(id: string): CliError {
  return new CliError(`no job with id ${id}`, "NOT_FOUND");
}

/** One job with every file (paging through files). */
export async function fetchJob(api: Api, id: string): Promise<ResultOf<typeof JobQuery>> {
  const first = await api.request(JobQuery, { id, filesFirst: 200 });
  const job = first.job;
  if (!job) throw notFound(id);
  let page = job.files;
  while (page.pageInfo.hasNextPage) {
    const next = await api.request(JobQuery, { id, filesFirst: 200, filesAfter: page.pageInfo.endCursor });
    if (!next.job) throw notFound(id);
    job.files.edges.push(...next.job.files.edges);
    page = next.job.files;
  }
  job.files.pageInfo = page.pageInfo;
  return first;
}

type JobsFilter = NonNullable<VariablesOf<typeof JobsQuery>["filter"]>;

/** Every job matching (all pages), or the first `first`. */
async function fetchJobs(api: Api, filter: JobsFilter, first: number | undefined): Promise<ResultOf<typeof JobsQuery>> {
  const pageSize = Math.min(first ?? 200, 200);
  const data = await api.request(JobsQuery, { filter, first: pageSize });
  const jobs = data.jobs;
  while (jobs.pageInfo.hasNextPage && (first === undefined || jobs.edges.length < first)) {
    const more = Math.min(200, first === undefined ? 200 : first - jobs.edges.length);
    const next = await api.request(JobsQuery, { filter, first: more, after: jobs.pageInfo.endCursor });
    jobs.edges.push(...next.jobs.edges);
    jobs.pageInfo = next.jobs.pageInfo;
    jobs.totalCount = next.jobs.totalCount;
  }
  return data;
}

function errorText(e: { code: string; message: string } | null | undefined): string {
  return e ? `${e.code}: ${e.message}` : "";
}

export function registerJobCommands(program: Command, ctx: CliContext): void {
  // ---- create ------------------------------------------------------------------------------------
  addJobPropertyOptions(
    program
      .command("create")
      .description("create a job (it starts SUSPENDED: add files, then resume it); prints its id")
      .argument("[files...]", "files to download, as pairs: <url> <localPath> ...")
      .option("--name <name>", "display name (default: the first file's name)")
      .option("--file <url-and-path...>", "a file to download: --file <url> <localPath> (repeatable)")
      .option("--resume", "queue the job right away (resumeJob)")
      .option("--json", "print the API's answer as JSON"),
  ).action(async (files: string[], o: JobPropertyOptions & { name?: string; file?: string[]; resume?: boolean; json?: boolean }, cmd: Command) => {
    const api = ctx.api(cmd);
    const fileInputs = [...filePairs(o.file ?? [], "--file"), ...filePairs(files, "files")];
    const displayName = o.name ?? (fileInputs[0] ? path.posix.basename(fileInputs[0].localPath) : "haul job");
    const props = jobPropertiesInput(o);
    const data = await api.request(CreateJobMutation, {
      input: { ...props, displayName, files: fileInputs.length ? fileInputs : undefined },
    });
    let payload: Payload = data.createJob;
    let out: unknown = data;
    if (o.resume) {
      const resumed = await api.request(ResumeJobMutation, { id: payload.job.id });
      printWarnings(payload.warnings);
      payload = resumed.resumeJob;
      out = { ...data, resumeJob: resumed.resumeJob };
    }
    if (o.json) printJson(out);
    else process.stdout.write(`${payload.job.id}\n`);
    printWarnings(payload.warnings);
  });

  // ---- add ---------------------------------------------------------------------------------------
  program
    .command("add")
    .description("add a file to a job (bitsadmin /addfile, Add-BitsFile)")
    .argument("<job>", "job id (the id printed by haul, or the job's UUID)")
    .argument("<url>", "http(s) URL to download")
    .argument("<localPath>", "where to put it, relative to your directory under the storage root")
    .option("--sha256 <hex>", "expected SHA-256 of the content: verified before the file counts as transferred", parseSha256)
    .option("--json", "print the API's answer as JSON")
    .action(async (job: string, remoteUrl: string, localPath: string, o: { sha256?: string; json?: boolean }, cmd: Command) => {
      const data = await ctx.api(cmd).request(AddFilesMutation, { jobId: job, files: [{ remoteUrl, localPath, sha256: o.sha256 }] });
      printPayload(data.addFiles, data, o.json);
    });

  // ---- resume / suspend / complete / cancel ------------------------------------------------------
  /** Each verb: its mutation, and what it prints besides "<id>  <STATE>". */
  type Outcome = { data: unknown; payload: Payload; extra: string[] };
  const lifecycle: [verb: string, description: string, run: (api: Api, id: string) => Promise<Outcome>][] = [
    [
      "resume",
      "queue jobs for transfer (also retries a job in ERROR at once)",
      async (api, id) => {
        const data = await api.request(ResumeJobMutation, { id });
        return { data, payload: data.resumeJob, extra: [] };
      },
    ],
    [
      "suspend",
      "stop jobs' transfers (resume continues where they stopped)",
      async (api, id) => {
        const data = await api.request(SuspendJobMutation, { id });
        return { data, payload: data.suspendJob, extra: [] };
      },
    ],
    [
      "complete",
      "make the transferred files visible under their final names and end the jobs; prints their paths under the storage root",
      async (api, id) => {
        const data = await api.request(CompleteJobMutation, { id });
        const job = data.completeJob.job;
        const extra = job.files.edges.filter((e) => e.node.completed).map((e) => `  ${job.owner}/${e.node.localPath}`);
        return { data, payload: data.completeJob, extra };
      },
    ],
    [
      "cancel",
      "end jobs and delete their temporary files (Remove-BitsTransfer)",
      async (api, id) => {
        const data = await api.request(CancelJobMutation, { id });
        return { data, payload: data.cancelJob, extra: [] };
      },
    ],
  ];
  for (const [verb, description, run] of lifecycle) {
    program
      .command(verb)
      .description(description)
      .argument("<jobs...>", "job ids (the id printed by haul, or the job's UUID)")
      .option("--json", "print the API's answers as JSON (one document per job)")
      .action(async (jobs: string[], o: { json?: boolean }, cmd: Command) => {
        const api = ctx.api(cmd);
        let failed = false;
        for (const id of jobs) {
          try {
            const { data, payload, extra } = await run(api, id);
            printPayload(payload, data, o.json);
            if (!o.json) for (const line of extra) process.stdout.write(`${line}\n`);
          } catch (err) {
            // One job: its error is the command's. Several: report each, go on, exit 1 at the end.
            if (jobs.length === 1 || !(err instanceof CliError)) throw err;
            failed = true;
            process.stderr.write(`haul: ${id}: ${err.message}${err.code ? ` (${err.code})` : ""}\n`);
          }
        }
        if (failed) process.exitCode = 1;
      });
  }

  // ---- set ---------------------------------------------------------------------------------------
  addJobPropertyOptions(
    program
      .command("set")
      .description("change a job's properties (bitsadmin /set*, Set-BitsTransfer)")
      .argument("<job>", "job id (the id printed by haul, or the job's UUID)")
      .option("--name <name>", "display name"),
    { forUpdate: true },
  )
    .option("--json", "print the API's answer as JSON")
    .action(async (job: string, o: JobPropertyOptions & { name?: string; json?: boolean }, cmd: Command) => {
      const input = jobPropertiesInput(o);
      if (o.name !== undefined) input.displayName = o.name;
      if (Object.keys(input).length === 0) throw usageError("nothing to set: give at least one property option (see haul set --help)");
      const data = await ctx.api(cmd).request(UpdateJobMutation, { id: job, input });
      printPayload(data.updateJob, data, o.json);
    });

  // ---- list --------------------------------------------------------------------------------------
  program
    .command("list")
    .description("list jobs (bitsadmin /list, Get-BitsTransfer); finished jobs only when --state names them")
    .option("--all-users", "every user's jobs (ADMIN)")
    .option("--owner <user>", "only this user's jobs (another user's: ADMIN)")
    .option("--state <states>", "only jobs in these states (repeatable or comma-separated, e.g. ERROR,TRANSIENT_ERROR)", parseStates)
    .option("--first <n>", "at most this many jobs (default: all)", parsePositiveInt)
    .option("--json", "print the API's answer as JSON")
    .action(async (o: { allUsers?: boolean; owner?: string; state?: JobState[]; first?: number; json?: boolean }, cmd: Command) => {
      const filter: JobsFilter = {};
      if (o.allUsers) filter.allUsers = true;
      if (o.owner) filter.owner = o.owner;
      if (o.state?.length) filter.states = [...new Set(o.state)];
      const data = await fetchJobs(ctx.api(cmd), filter, o.first);
      if (o.json) {
        printJson(data);
        return;
      }
      const jobs = data.jobs.edges.map((e) => e.node);
      if (jobs.length === 0) {
        process.stdout.write("no jobs\n");
        return;
      }
      process.stdout.write(
        table(
          ["ID", "NAME", "STATE", "PRIORITY", "OWNER", "FILES", "PROGRESS", "ERROR"],
          jobs.map((j) => [
            j.id,
            truncate(j.displayName, 32),
            j.state,
            j.priority,
            j.owner,
            `${j.progress.filesTransferred}/${j.progress.filesTotal}`,
            formatProgress(j.progress),
            truncate(errorText(j.error), 60),
          ]),
        ),
      );
      if (data.jobs.totalCount > jobs.length) process.stdout.write(`(${jobs.length} of ${data.jobs.totalCount} jobs)\n`);
    });

  // ---- info --------------------------------------------------------------------------------------
  program
    .command("info")
    .description("show a job with its files, error, times and progress (bitsadmin /info /verbose)")
    .argument("<job>", "job id (the id printed by haul, or the job's UUID)")
    .option("--json", "print the API's answer as JSON")
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      const data = await fetchJob(ctx.api(cmd), id);
      if (o.json) {
        printJson(data);
        return;
      }
      const j = data.job!;
      const pairs: [string, string][] = [
        ["id", j.id],
        ["name", j.displayName],
        ["description", j.description || "-"],
        ["state", j.state],
        ["priority", j.priority],
        ["owner", j.owner],
        ["type", j.type],
        ["progress", `${formatProgress(j.progress)}, files ${j.progress.filesTransferred}/${j.progress.filesTotal}`],
        ["created", formatTime(j.times.createdAt)],
        ["modified", formatTime(j.times.modifiedAt)],
        ["transferred", formatTime(j.times.transferCompletedAt)],
        ["errors", String(j.errorCount)],
      ];
      if (j.error) {
        const e = j.error;
        pairs.push(["error", `${e.code} (${e.context}${e.httpStatus ? `, HTTP ${e.httpStatus}` : ""}): ${e.message}`]);
        if (e.file) pairs.push(["error file", `${e.file.remoteUrl} -> ${e.file.localPath}`]);
      }
      if (j.retryAt) pairs.push(["retry at", formatTime(j.retryAt)]);
      pairs.push(
        ["retry delay", formatDuration(j.minimumRetryDelay)],
        ["no-progress timeout", formatDuration(j.noProgressTimeout)],
        ["max download time", formatDuration(j.maximumDownloadTime)],
        ["bandwidth cap", j.maxBytesPerSecond ? `${formatBytes(j.maxBytesPerSecond)}/s` : "none"],
        ["credentials", j.hasCredentials ? "set" : "none"],
        ["custom headers", j.httpHeaderNames.length ? j.httpHeaderNames.join(", ") : "none"],
      );
      process.stdout.write(details(pairs));
      const files = j.files.edges.map((e) => e.node);
      process.stdout.write(`\nfiles (${j.files.totalCount}):\n`);
      if (files.length) {
        process.stdout.write(
          table(
            ["#", "STATUS", "PROGRESS", "URL", "LOCAL PATH"],
            files.map((f) => [
              String(f.position),
              f.completed ? "completed" : f.transferred ? "transferred" : "pending",
              formatProgress(f),
              f.remoteUrl,
              f.localPath,
            ]),
          ),
        );
      }
    });
}
