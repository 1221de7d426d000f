// `haul monitor [--job id] [--after cursor]`: bitsadmin /monitor as a stream. One line per state
// transition (jobStateChanged over graphql-ws). When the connection drops it reconnects with
// exponential backoff and subscribes again with `after: <the last cursor it printed>`: the server
// replays what was committed meanwhile, so nothing is missed and nothing is printed twice.
// Ctrl-C stops it (exit 0).
import type { Command } from "commander";
import type { LiveSession } from "../client.js";
import { EventCursorQuery, JobStateChangedSubscription } from "../documents.js";
import type { ResultOf } from "../graphql.js";
import { formatTime, printJsonLine, truncate } from "../format.js";
import type { CliContext } from "../main.js";
import { usageError } from "../options.js";

type Data = ResultOf<typeof JobStateChangedSubscription>;

export function formatTransition(c: Data["jobStateChanged"]): string {
  const error = c.error && (c.state === "ERROR" || c.state === "TRANSIENT_ERROR") ? `  ${c.error.code}: ${truncate(c.error.message, 100)}` : "";
  return `${formatTime(c.at)}  #${c.cursor}  ${c.job.id}  ${truncate(c.job.displayName, 32)}  ${c.previousState ?? "(new)"} -> ${c.state}${error}\n`;
}

export function registerMonitorCommand(program: Command, ctx: CliContext): void {
  program
    .command("monitor")
    .description(
      "print job state transitions live, one line each (bitsadmin /monitor); survives reconnects without missing any. " +
        "With --job the job's history is printed first",
    )
    .option("--job <id>", "only this job (its history first, then live transitions)")
    .option("--after <cursor>", 'start after this cursor (the #number of a line; "0": the whole history)')
    .option("--json", "one JSON document per line: the subscription's data for each transition")
    .action(async (o: { job?: string; after?: string; json?: boolean }, cmd: Command) => {
      if (o.after !== undefined && !/^\d+$/.test(o.after)) throw usageError(`--after must be a cursor (a whole number, as printed after #): ${o.after}`);
      const api = ctx.api(cmd);
      // The last cursor printed. Following live only, it starts at the server's newest event
      // (eventCursor), so even a reconnect before the first transition resumes exactly there.
      let cursor: string = o.after ?? (o.job ? "0" : (await api.request(EventCursorQuery, {})).eventCursor);
      let live: LiveSession | null = null;

      const print = (data: Data) => {
        const c = data.jobStateChanged;
        if (BigInt(c.cursor) <= BigInt(cursor)) return; // never twice
        cursor = c.cursor;
        if (o.json) printJsonLine(data);
        else process.stdout.write(formatTransition(c));
      };

      live = api.live({
        onConnected: (reconnected) => {
          if (!reconnected) {
            process.stderr.write(`monitoring ${o.job ? `job ${o.job}` : "every job you can see"} on ${api.conn.url} (Ctrl-C to stop)\n`);
          } else {
            process.stderr.write(`reconnected; resuming after #${cursor}\n`);
          }
        },
        onDisconnected: (reason, ms) => process.stderr.write(`lost the connection (${reason}); reconnecting in ${(ms / 1000).toFixed(1)} s\n`),
      });
      live.subscribe(
        JobStateChangedSubscription,
        // At every (re)subscribe: resume after the last printed transition.
        () => ({ jobId: o.job, after: cursor }),
        print,
      );

      const stop = () => live?.close();
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
      try {
        await live.start();
        await live.done;
      } finally {
        process.off("SIGINT", stop);
        process.off("SIGTERM", stop);
      }
    });
}
