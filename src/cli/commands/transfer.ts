// `haul transfer <url> <localPath>`: Start-BitsTransfer / bitsadmin /transfer. Creates a job
// (FOREGROUND by default, as Start-BitsTransfer), resumes it, shows a live progress bar on stderr
// (jobProgress), waits for TRANSFERRED (jobStateChanged, replayed from the job's first event, so no
// transition can slip between the resume and the subscription), completes it and prints the final
// path. ERROR: prints the error's message and code and exits 1 (the job is left in ERROR, for
// `haul info`). Ctrl-C suspends the job and says how to resume it (exit 130).
// --asynchronous: only create and resume, print the job id (the caller runs `haul complete`).
import path from "node:path";
import type { Command } from "commander";
import { CliError, type LiveSession } from "../client.js";
import {
  CompleteJobMutation,
  CreateJobMutation,
  JobProgressSubscription,
  JobStateChangedSubscription,
  ResumeJobMutation,
  SuspendJobMutation,
} from "../documents.js";
import type { ResultOf } from "../graphql.js";
import { formatBytes, formatRate, printJson, ProgressBar } from "../format.js";
import { addJobPropertyOptions, jobPropertiesInput, parseSha256, type JobPropertyOptions } from "../options.js";
import type { CliContext } from "../main.js";
import { printWarnings } from "./jobs.js";

type StateChange = ResultOf<typeof JobStateChangedSubscription>["jobStateChanged"];

interface TransferOptions extends JobPropertyOptions {
  name?: string;
  sha256?: string;
  asynchronous?: boolean;
  json?: boolean;
}

type Outcome = { kind: "transferred" } | { kind: "failed"; error: CliError } | { kind: "interrupted" };

export function registerTransferCommand(program: Command, ctx: CliContext): void {
  addJobPropertyOptions(
    program
      .command("transfer")
      .description("download a file and wait for it, with a progress bar (Start-BitsTransfer); Ctrl-C suspends the job")
      .argument("<url>", "http(s) URL to download")
      .argument("<localPath>", "where to put it, relative to your directory under the storage root")
      .option("--name <name>", "the job's display name (default: the file's name)")
      .option("--sha256 <hex>", "expected SHA-256 of the content (verified before the job counts as transferred)", parseSha256)
      .option("--asynchronous", "only create and resume the job; print its id (then: haul complete <id>)"),
    { priorityDefault: "FOREGROUND" },
  )
    .option("--json", "print the API's completeJob answer as JSON")
    .action(async (remoteUrl: string, localPath: string, o: TransferOptions, cmd: Command) => {
      const api = ctx.api(cmd);
      const started = Date.now();

      // Ctrl-C before the job exists just stops; afterwards it suspends the job (below).
      let interrupt: (() => void) | null = null;
      let interrupted = false;
      const onSigint = () => {
        if (interrupted) process.exit(130); // a second Ctrl-C: leave now
        interrupted = true;
        interrupt?.();
      };
      process.on("SIGINT", onSigint);

      const props = jobPropertiesInput(o);
      const created = await api.request(CreateJobMutation, {
        input: { ...props, displayName: o.name ?? path.posix.basename(localPath), files: [{ remoteUrl, localPath, sha256: o.sha256 }] },
      });
      const job = created.createJob.job;
      printWarnings(created.createJob.warnings);
      process.stderr.write(`job ${job.id}: ${remoteUrl} -> ${localPath}\n`);

      if (o.asynchronous) {
        const resumed = await api.request(ResumeJobMutation, { id: job.id });
        printWarnings(resumed.resumeJob.warnings);
        if (o.json) printJson({ ...created, resumeJob: resumed.resumeJob });
        else process.stdout.write(`${job.id}\n`);
        process.stderr.write(`the job is ${resumed.resumeJob.job.state}; when it is TRANSFERRED, run: haul complete ${job.id}\n`);
        process.off("SIGINT", onSigint);
        return;
      }

      const bar = new ProgressBar();
      let cursor = "0";
      let lastState: string = job.state;
      let resumed = false;
      let lastBytes = "0";
      let live: LiveSession | null = null;

      const outcome = await new Promise<Outcome>((resolve) => {
        interrupt = () => resolve({ kind: "interrupted" });
        if (interrupted) return interrupt();

        const onChange = (c: StateChange) => {
          cursor = c.cursor;
          lastState = c.state;
          if (c.state === "TRANSFERRED") {
            lastBytes = c.job.progress.bytesTransferred;
            bar.render({ ...c.job.progress, bytesPerSecond: 0, state: c.state });
            resolve({ kind: "transferred" });
          } else if (c.state === "ERROR") {
            const e = c.error;
            resolve({ kind: "failed", error: new CliError(`the transfer failed: ${e?.message ?? "unknown error"}`, e?.code ?? "ERROR") });
          } else if (c.state === "CANCELLED" || c.state === "ACKNOWLEDGED") {
            resolve({ kind: "failed", error: new CliError(`the job was ${c.state.toLowerCase()}${c.actor ? ` by ${c.actor}` : ""}`, "INVALID_STATE") });
          } else if (c.state === "TRANSIENT_ERROR" && c.error) {
            bar.note(`transient error, will retry: ${c.error.code}: ${c.error.message}`);
          } else if (c.state === "SUSPENDED" && resumed && c.kind === "STATE_CHANGED") {
            bar.note(`the job was suspended${c.actor ? ` by ${c.actor}` : ""}; waiting (haul resume ${job.id})`);
          }
        };

        live = api
          .live({
            onDisconnected: (reason, ms) => bar.note(`lost the connection (${reason}); reconnecting in ${(ms / 1000).toFixed(1)} s`),
            onConnected: (re) => {
              if (re) bar.note("reconnected");
            },
          })
          .subscribe(JobStateChangedSubscription, () => ({ jobId: job.id, after: cursor }), (d) => onChange(d.jobStateChanged))
          .subscribe(JobProgressSubscription, () => ({ jobId: job.id }), (d) => {
            const p = d.jobProgress;
            lastBytes = p.bytesTransferred;
            if (resumed) bar.render({ ...p, state: lastState === "TRANSFERRED" ? lastState : p.state });
          });
        live.done.catch((err: CliError) => resolve({ kind: "failed", error: err }));

        // Resume once subscribed (the state stream replays from the job's first event anyway).
        live
          .start()
          .then(async () => {
            const r = await api.request(ResumeJobMutation, { id: job.id });
            resumed = true;
            printWarnings(r.resumeJob.warnings);
          })
          .catch((err: unknown) => resolve({ kind: "failed", error: err instanceof CliError ? err : new CliError(String(err)) }));
      });
      (live as LiveSession | null)?.close();
      bar.finish();

      try {
        if (outcome.kind === "interrupted") {
          await api.request(SuspendJobMutation, { id: job.id });
          process.stderr.write(
            `interrupted: job ${job.id} is suspended; resume it with: haul resume ${job.id} (then haul complete ${job.id} once it is TRANSFERRED)\n`,
          );
          process.exitCode = 130;
          return;
        }
        if (outcome.kind === "failed") {
          if (lastState !== "CANCELLED" && lastState !== "ACKNOWLEDGED") {
            process.stderr.write(`job ${job.id} is left in ${lastState}: see haul info ${job.id}; retry it with haul resume, remove it with haul cancel\n`);
          }
          throw outcome.error;
        }
        const done = await api.request(CompleteJobMutation, { id: job.id });
        printWarnings(done.completeJob.warnings);
        const files = done.completeJob.job.files.edges.filter((e) => e.node.completed);
        if (o.json) printJson(done);
        else for (const f of files) process.stdout.write(`${done.completeJob.job.owner}/${f.node.localPath}\n`);
        const seconds = Math.max(0.001, (Date.now() - started) / 1000);
        process.stderr.write(
          `done: ${formatBytes(lastBytes)} in ${seconds.toFixed(1)} s (${formatRate(Number(lastBytes) / seconds)}); ` +
            `the file is ${done.completeJob.job.owner}/${localPath} under the server's storage root\n`,
        );
      } finally {
        process.off("SIGINT", onSigint);
      }
    });
}
