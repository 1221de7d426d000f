// `npm run bench`: every scenario in its quick mode (well under 5 minutes); `BENCH_FULL=1 npm run bench`:
// the sizes of the issues. Each scenario file exports an array of scenarios (`run(opts) -> Row[]`);
// add a file's array to SCENARIOS below. Every child process, temp dir and database a scenario
// makes is registered with the clean-up in lib.ts, which also runs on Ctrl-C.
//
//   BENCH_FULL=1          full sizes
//   BENCH_ONLY=<text>     only the scenarios whose name contains <text> (e.g. BENCH_ONLY=aria2c)
//   BENCH_PROFILE=<dir>   run the haul children with --cpu-prof, profiles written to <dir> at their exit
//                         (summarise them with `node --import tsx bench/cpuprofile.ts <dir>`)
//   BENCH_HAUL_ROOT=<dir> benchmark the haul tree in <dir> (e.g. `git archive HEAD | tar -x -C <dir>`, node_modules
//                         linked, `node scripts/generate.mjs` run there) instead of this working tree
//   BENCH_HAUL_ENTRY=<js>  run haul children as `node <js>` (a compiled entry) instead of `node --import tsx src/main.ts`
//   BENCH_PG_SOCKET=<dir> haul children reach Postgres over the Unix socket in <dir> (e.g. /var/run/postgresql)
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { type BenchOptions, type Row, type Scenario, HAUL_ROOT, REPO_ROOT, formatTable, runCleanups } from "./lib.js";
import { scenarios as transfer } from "./transfer.js";
import { scenarios as fanout } from "./fanout.js";
import { scenarios as million } from "./million.js";
import { scenarios as lifecycle } from "./lifecycle.js";
import { scenarios as readpath } from "./readpath.js";

const SCENARIOS: Scenario[] = [...transfer, ...lifecycle, ...fanout, ...readpath, ...million];

/** Other work on the machine skews every figure (the ratios less so): printed so that a reader can tell. */
const loadavg = () => os.loadavg().map((l) => l.toFixed(2)).join(" ");

async function main(): Promise<number> {
  const full = process.env.BENCH_FULL === "1" || process.env.BENCH_FULL === "true";
  const only = process.env.BENCH_ONLY?.trim() || null;
  const profileDir = process.env.BENCH_PROFILE?.trim() ? path.resolve(process.env.BENCH_PROFILE.trim()) : null;
  if (profileDir) fs.mkdirSync(profileDir, { recursive: true });
  const t0 = performance.now();
  const opts: BenchOptions = {
    full,
    profileDir,
    log: (m) => console.log(`  [${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${m}`),
  };
  console.log(
    `haul bench, ${full ? "FULL" : "quick"} mode (BENCH_FULL=1 for the full sizes): ${os.cpus().length} CPU (${os.cpus()[0]?.model ?? "?"}), ` +
      `Linux ${os.release()}, Node ${process.version}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM; load average ${loadavg()}`,
  );
  if (HAUL_ROOT !== REPO_ROOT) console.log(`haul under test: ${HAUL_ROOT} (BENCH_HAUL_ROOT)`);
  const selected = SCENARIOS.filter((s) => !only || s.name.includes(only));
  const rows: Row[] = [];
  let failed = 0;
  for (const s of selected) {
    console.log(`\n# ${s.name}`);
    const st = performance.now();
    try {
      const r = await s.run(opts);
      rows.push(...r);
      console.log(`\n${formatTable(r)}\n  (${((performance.now() - st) / 1000).toFixed(1)} s)`);
    } catch (err) {
      failed++;
      console.error(`scenario "${s.name}" failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    } finally {
      await runCleanups();
    }
  }
  console.log(`\n# summary (${full ? "full" : "quick"} mode, ${((performance.now() - t0) / 1000).toFixed(0)} s; load average now ${loadavg()})\n`);
  console.log(formatTable(rows));
  if (profileDir) console.log(`\nCPU profiles of the haul children: ${profileDir}`);
  return failed ? 1 : 0;
}

let interrupted = false;
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.on(sig, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error(`\n${sig}: cleaning up`);
    void runCleanups().finally(() => process.exit(130));
  });
}

main().then(
  async (code) => {
    await runCleanups();
    process.exit(code);
  },
  async (err) => {
    console.error(err);
    await runCleanups();
    process.exit(1);
  },
);
