// Shared pieces of the benchmarks: the scenario/row types and the table, a clean-up registry (child
// processes, temp dirs, databases), the origin process, a haul child process, GraphQL over fetch,
// external tools (curl, aria2c) and small statistics. Nothing here asserts: benches measure.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/**
 * The haul tree that is benchmarked: this repository, or BENCH_HAUL_ROOT (another checkout, e.g. an
 * exported commit with node_modules linked and `npm run generate` run, to measure a fixed version
 * while src/ is being edited). Its src/main.ts is run and its test/helpers/db.ts creates (and
 * migrates) the databases, so server and schema always match.
 */
export const HAUL_ROOT = process.env.BENCH_HAUL_ROOT?.trim() ? path.resolve(process.env.BENCH_HAUL_ROOT.trim()) : REPO_ROOT;

// ---- scenarios and the table ---------------------------------------------------------------------

export interface BenchOptions {
  /** BENCH_FULL=1: the sizes of the issue; otherwise the quick mode (well under 5 minutes in all). */
  full: boolean;
  /** BENCH_PROFILE=<dir>: run haul children with --cpu-prof into this directory. */
  profileDir: string | null;
  log(msg: string): void;
}

export interface Row {
  scenario: string;
  /** e.g. "curl 812 MB/s" */
  baseline: string;
  /** e.g. "haul 640 MB/s" */
  haul: string;
  /** haul / baseline, oriented so that higher is better (or null when there is no ratio). */
  ratio: number | null;
  /** e.g. ">= 0.90x" */
  target: string;
  pass: boolean;
  /** Anything the reader must know to read the figure (settings, fairness, what was persisted). */
  note?: string;
}

export interface Scenario {
  name: string;
  run(opts: BenchOptions): Promise<Row[]>;
}

export function formatTable(rows: Row[]): string {
  const head = ["scenario", "baseline", "haul", "ratio", "target", "result"];
  const body = rows.map((r) => [r.scenario, r.baseline, r.haul, r.ratio === null ? "-" : `${r.ratio.toFixed(2)}x`, r.target, r.pass ? "PASS" : "MISS"]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  const out = [line(head), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...body.map(line)];
  const notes = rows.filter((r) => r.note).map((r) => `  - ${r.scenario}: ${r.note}`);
  return [...out, ...(notes.length ? ["", "Notes:", ...notes] : [])].join("\n");
}

// ---- clean-up ------------------------------------------------------------------------------------

const cleanups = new Map<number, { label: string; fn: () => Promise<void> | void }>();
let nextCleanup = 0;

/** Registers a clean-up; the returned function runs it now (once) and unregisters it. */
export function onCleanup(label: string, fn: () => Promise<void> | void): () => Promise<void> {
  const id = nextCleanup++;
  cleanups.set(id, { label, fn });
  return async () => {
    if (!cleanups.delete(id)) return;
    await fn();
  };
}

/** Runs every clean-up still registered, newest first (children before their databases). */
export async function runCleanups(): Promise<void> {
  const all = [...cleanups.entries()].reverse();
  cleanups.clear();
  for (const [, c] of all) {
    try {
      await c.fn();
    } catch (err) {
      console.error(`bench: clean-up "${c.label}" failed: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

/** A fresh temporary directory (under `base`, default the OS temp dir), removed at clean-up. */
export function tempDir(prefix: string, base = os.tmpdir()): { dir: string; remove: () => Promise<void> } {
  const dir = fs.mkdtempSync(path.join(base, `haul-bench-${prefix}-`));
  const remove = onCleanup(`rm ${dir}`, () => fs.rmSync(dir, { recursive: true, force: true }));
  return { dir, remove };
}

/** A fresh, migrated database on the local Postgres (test/helpers/db.ts), dropped at clean-up. */
export async function createDatabase(): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
  // Lazily (the origin process imports this file too), and from the tree under test.
  const helpers = pathToFileURL(path.join(HAUL_ROOT, "test/helpers/db.ts")).href;
  const { createTestDatabase } = (await import(helpers)) as typeof import("../test/helpers/db.js");
  const db = await createTestDatabase();
  const drop = onCleanup(`drop database ${db.name}`, () => db.drop());
  return { url: db.url, name: db.name, drop };
}

// ---- child processes -----------------------------------------------------------------------------

/** Sends SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

/** A port that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** The paths of a series of origin files: `${prefix}${i}.bin`, i zero-padded (unique basenames for aria2c -d). */
export function seriesPaths(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(5, "0")}.bin`);
}

export interface OriginSpec {
  files?: { path: string; size: number }[];
  series?: { prefix: string; count: number; size: number }[];
}

export interface OriginProcess {
  url: string;
  pid: number;
  sha256(paths: string[]): Promise<Record<string, string>>;
  close(): Promise<void>;
}

/** bench/origin-server.ts in a child process (its own CPU thread), driven by JSON lines. */
export async function startOriginProcess(spec: OriginSpec): Promise<OriginProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "bench/origin-server.ts")], {
    cwd: REPO_ROOT,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += String(d)));
  const close = onCleanup(`origin pid ${child.pid}`, async () => {
    child.stdin!.end();
    await stopChild(child, 5_000);
  });
  const lines = readline.createInterface({ input: child.stdout! });
  const waiting: ((line: string) => void)[] = [];
  lines.on("line", (l) => waiting.shift()?.(l));
  const exited = new Promise<never>((_, reject) => child.once("exit", (code) => reject(new Error(`bench origin exited (${code}): ${stderr.slice(-2000)}`))));
  exited.catch(() => {});
  const ask = (msg: unknown): Promise<Record<string, unknown>> => {
    const answer = new Promise<string>((r) => waiting.push(r));
    child.stdin!.write(`${JSON.stringify(msg)}\n`);
    return Promise.race([answer, exited]).then((l) => JSON.parse(l) as Record<string, unknown>);
  };
  try {
    const hello = await ask(spec);
    return {
      url: hello.url as string,
      pid: child.pid!,
      sha256: async (paths) => (await ask({ sha256: paths })).sha256 as Record<string, string>,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

export interface HaulChild {
  pid: number;
  url: string;
  graphqlUrl: string;
  /** The ADMIN token it was started with (HAUL_ADMIN_TOKEN); sent as a Bearer token by `gql`. */
  token: string;
  /** A GraphQL request to this server, authenticated; throws on errors. */
  gql<T = any>(query: string, variables?: Record<string, unknown>): Promise<T>;
  storageRoot: string;
  /** stdout+stderr so far. */
  output(): string;
  /** /proc/<pid>/status VmHWM (peak resident set) in bytes. */
  peakRss(): number;
  /** /proc/<pid>/status VmRSS in bytes. */
  rss(): number;
  /** CPU time used so far (user + system, all threads), in ms; 10 ms resolution. */
  cpuMs(): number;
  stop(): Promise<void>;
}

/** kB figure of a /proc/<pid>/status field, in bytes. */
export function procStatusBytes(pid: number, field: "VmHWM" | "VmRSS"): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
}

/** utime + stime of a process (/proc/<pid>/stat fields 14 and 15, in clock ticks of 1/100 s), in ms. */
export function procCpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields from 3 (state) on
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * What `npm start` (package.json "start" of the tree under test) puts around `node dist/main.js`: the
 * environment assignments before `node` (e.g. MALLOC_ARENA_MAX=2) and the Node flags between `node`
 * and the entry (e.g. --max-semi-space-size=1), so that haul children run as `npm start` runs it.
 * Variables already set in the bench's environment win.
 */
export function startFlags(): { env: Record<string, string>; nodeArgs: string[] } {
  const pkg = JSON.parse(fs.readFileSync(path.join(HAUL_ROOT, "package.json"), "utf8")) as { scripts?: Record<string, string> };
  const start = pkg.scripts?.start ?? "";
  const cmd = start.split("&&").map((c) => c.trim()).find((c) => /(^|\s)node\s.*dist\/main\.js\b/.test(c));
  if (!cmd) return { env: {}, nodeArgs: [] };
  const words = cmd.split(/\s+/);
  const nodeAt = words.indexOf("node");
  const env: Record<string, string> = {};
  for (const w of words.slice(0, nodeAt)) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(w);
    if (m && process.env[m[1]!] === undefined) env[m[1]!] = m[2]!;
  }
  const nodeArgs = words.slice(nodeAt + 1, words.findIndex((w) => w.endsWith("dist/main.js"))).filter((w) => w.startsWith("-"));
  return { env, nodeArgs };
}

/**
 * `node dist/main.js` (as `npm start` runs it) as a child process on `databaseUrl`, a fresh storage root, a free
 * port and HAUL_LOG_LEVEL=warn; resolves once /healthz answers. `env` adds or overrides variables.
 */
export async function startHaul(opts: {
  databaseUrl: string;
  env?: Record<string, string>;
  profileDir?: string | null;
  /** Where its temp home (storage root, data dir) goes; default the OS temp dir. */
  base?: string;
  /** Node flags instead of those of `npm start` (startFlags()), for experiments. */
  nodeArgs?: string[];
}): Promise<HaulChild> {
  const port = await freePort();
  const { dir: home } = tempDir("haul", opts.base);
  const storageRoot = path.join(home, "files");
  fs.mkdirSync(storageRoot);
  const nodeArgs = [...(opts.nodeArgs ?? startFlags().nodeArgs), ...(opts.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${opts.profileDir}`] : [])];
  // BENCH_PG_SOCKET=/var/run/postgresql: haul reaches Postgres over its Unix socket instead of TCP loopback.
  let databaseUrl = opts.databaseUrl;
  const socketDir = process.env.BENCH_PG_SOCKET?.trim();
  if (socketDir) {
    const u = new URL(databaseUrl);
    u.hostname = "localhost";
    u.port = "";
    u.searchParams.set("host", socketDir);
    databaseUrl = u.toString();
  }
  // As `npm start` runs it: the compiled dist/main.js (built here if missing). BENCH_HAUL_ENTRY=<file.js>
  // runs another compiled entry; BENCH_HAUL_ENTRY=tsx runs src/main.ts through tsx.
  let entry: string | undefined = process.env.BENCH_HAUL_ENTRY?.trim() || "dist/main.js";
  if (entry === "tsx") entry = undefined;
  else if (entry === "dist/main.js") ensureFreshHaulBuild((m) => console.log(`  ${m}`)); // once per bench run
  const child = spawn(process.execPath, [...nodeArgs, ...(entry ? [path.resolve(HAUL_ROOT, entry)] : ["--import", "tsx", "src/main.ts"])], {
    cwd: HAUL_ROOT,
    env: {
      ...process.env,
      ...startFlags().env, // as `npm start` (package.json), e.g. MALLOC_ARENA_MAX=2
      DATABASE_URL: databaseUrl,
      HOST: "127.0.0.1",
      PORT: String(port),
      HAUL_DATA_DIR: path.join(home, "data"),
      HAUL_STORAGE_ROOT: storageRoot,
      HAUL_LOG_LEVEL: "warn",
      // Authentication: an ADMIN token of our own (a version without authentication ignores it).
      HAUL_ADMIN_TOKEN: BENCH_TOKEN,
      // The origin is on loopback, which the destination policy refuses unless allowed.
      HAUL_ALLOWED_NETWORKS: "127.0.0.0/8",
      // 100 jobs at once (scenario 2) is above the default per-user quota of unfinished jobs.
      HAUL_MAX_JOBS_PER_USER: "1000000",
      ...opts.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += String(d)));
  child.stderr!.on("data", (d) => (out += String(d)));
  const stop = onCleanup(`haul pid ${child.pid}`, () => stopChild(child));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`haul exited during start-up (${child.exitCode ?? child.signalCode}): ${out.slice(-3000)}`);
    }
    const ok = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`haul did not answer /healthz within 60 s: ${out.slice(-3000)}`);
    }
    await sleep(100);
  }
  const pid = child.pid!;
  return {
    pid,
    url,
    graphqlUrl: `${url}/graphql`,
    token: BENCH_TOKEN,
    gql: (query, variables) => gql(`${url}/graphql`, query, variables, BENCH_TOKEN),
    storageRoot,
    output: () => out,
    peakRss: () => procStatusBytes(pid, "VmHWM"),
    rss: () => procStatusBytes(pid, "VmRSS"),
    cpuMs: () => procCpuMs(pid),
    stop,
  };
}

/**
 * With BENCH_PROFILE: remembers a measured interval of a haul child (CLOCK_MONOTONIC, the clock of
 * V8's profile timestamps), so that bench/cpuprofile.ts can summarise only the samples taken while
 * it was being measured (not start-up or set-up).
 */
export function recordWindow(profileDir: string | null, pid: number, label: string, startNs: bigint, endNs: bigint): void {
  if (!profileDir) return;
  const line = JSON.stringify({ pid, label, startUs: Number(startNs / 1000n), endUs: Number(endNs / 1000n) });
  fs.appendFileSync(path.join(profileDir, "windows.jsonl"), `${line}\n`);
}

// ---- GraphQL -------------------------------------------------------------------------------------

/** The ADMIN token every haul child of this bench run accepts (HAUL_ADMIN_TOKEN). */
export const BENCH_TOKEN = `bench-${randomBytes(24).toString("base64url")}`;

/** One GraphQL request over HTTP (with a Bearer token when given); throws on transport or GraphQL errors. */
export async function gql<T = any>(graphqlUrl: string, query: string, variables?: Record<string, unknown>, token?: string): Promise<T> {
  const res = await fetch(graphqlUrl, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  let body: { data?: T; errors?: unknown[] };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new Error(`GraphQL HTTP ${res.status}: ${text.slice(0, 500)}`);
  }
  if (body.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors).slice(0, 1000)}`);
  if (!body.data) throw new Error(`GraphQL HTTP ${res.status} without data`);
  return body.data;
}

// ---- external tools ------------------------------------------------------------------------------

function onPath(bin: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${bin}`], { stdio: "ignore" }).status === 0;
}

/** Makes sure `bin` is installed, with `apt-get install -y <pkg>` (Debian's package) when it is not. */
export function ensureTool(bin: string, pkg: string, log: (m: string) => void): void {
  if (onPath(bin)) return;
  log(`${bin} is missing: apt-get install -y ${pkg}`);
  const install = () => spawnSync("apt-get", ["install", "-y", "-q", pkg], { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  let r = install();
  if (r.status !== 0) {
    spawnSync("apt-get", ["update", "-q"], { stdio: ["ignore", "ignore", "inherit"] });
    r = install();
  }
  if (r.status !== 0 || !onPath(bin)) throw new Error(`could not install ${pkg} (apt-get exit ${r.status}); install it and rerun`);
}

export function toolVersion(bin: string): string {
  const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
  return (r.stdout ?? "").split("\n")[0]?.trim() ?? "?";
}

/**
 * Runs a command to completion (through bash, whose `times` then reports the command's CPU time);
 * resolves with its wall time in ms (spawn to exit, including ~2 ms of bash) and its CPU time (user +
 * system, ms, 1 ms resolution); rejects on a non-zero exit.
 */
export async function timeCommand(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<{ ms: number; cpuMs: number }> {
  const t0 = performance.now();
  const child = spawn("bash", ["-c", '"$@"; rc=$?; times >&2; exit $rc', "bash", cmd, ...args], { cwd: opts.cwd, stdio: ["ignore", "ignore", "pipe"] });
  const kill = onCleanup(`${cmd} pid ${child.pid}`, () => stopChild(child, 2_000));
  let err = "";
  child.stderr!.on("data", (d) => (err += String(d)));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (c) => resolve(c));
  });
  const ms = performance.now() - t0;
  await kill();
  if (code !== 0) throw new Error(`${cmd} ${args.join(" ").slice(0, 200)} exited with ${code}: ${err.slice(-1000)}`);
  // `times`: the shell's user/system, then its children's: "0m0.123s 0m0.045s"
  const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(err.trimEnd());
  const cpuMs = m ? (Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000 : NaN;
  return { ms, cpuMs };
}

// ---- misc ----------------------------------------------------------------------------------------

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function sha256File(file: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest("hex");
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export function fmtBytes(n: number): string {
  if (n >= GiB) return `${(n / GiB).toFixed(n % GiB ? 2 : 0)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(n % MiB ? 1 : 0)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(0)} KiB`;
  return `${n} B`;
}

/** Megabytes (10^6) per second, as curl and most tools print them. */
export function fmtRate(bytesPerMs: number): string {
  return `${((bytesPerMs * 1000) / 1e6).toFixed(0)} MB/s`;
}

export const fmtMB = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;

// ---- lifecycle and read-path scenarios: pools, bare databases, Postgres counters, CPU pinning, autocannon

/** Runs `fn` over `items` with at most `limit` at once; results in item order. */
export async function mapPool<T, R>(items: readonly T[], limit: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

/** The maintenance database URL of the local Postgres (as test/helpers/db.ts: HAUL_TEST_DATABASE_URL or postgres@127.0.0.1:5432). */
export const PG_ADMIN_URL = process.env.HAUL_TEST_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

/** A fresh, empty database (no haul schema: e.g. for graphile-worker), dropped at clean-up. */
export async function createBareDatabase(prefix: string): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
  const { default: pg } = await import("pg");
  const name = `haul_bench_${prefix}_${process.pid}_${randomBytes(4).toString("hex")}`;
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: PG_ADMIN_URL });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await admin(`CREATE DATABASE "${name}"`);
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  const drop = onCleanup(`drop database ${name}`, () => admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
  return { url: u.toString(), name, drop };
}

/** Cumulative pg_stat_database figures of one database (transactions and rows). */
export interface PgDatabaseCounters {
  xactCommit: number;
  xactRollback: number;
  tupInserted: number;
  tupUpdated: number;
  tupDeleted: number;
  /** Per table of the public schema: rows inserted/updated/deleted and index/sequential scans. */
  tables: Record<string, { ins: number; upd: number; del: number; idxScan: number; seqScan: number }>;
}

/**
 * pg_stat_database and pg_stat_user_tables of `dbName`, read over `client` (connected to that
 * database). Backends publish their counters when they go idle, at most once a second (Postgres
 * 15), so wait ~1.5 s after the load before reading (`settleMs`).
 */
export async function pgDatabaseCounters(
  client: { query: (sql: string, values?: unknown[]) => Promise<{ rows: any[] }> },
  dbName: string,
  settleMs = 1500,
): Promise<PgDatabaseCounters> {
  if (settleMs > 0) await sleep(settleMs);
  await client.query("SELECT pg_stat_clear_snapshot()");
  const d = await client.query(
    `SELECT xact_commit::text, xact_rollback::text, tup_inserted::text, tup_updated::text, tup_deleted::text FROM pg_stat_database WHERE datname = $1`,
    [dbName],
  );
  const t = await client.query(
    `SELECT relname, n_tup_ins::text AS ins, n_tup_upd::text AS upd, n_tup_del::text AS del, coalesce(idx_scan, 0)::text AS idx, seq_scan::text AS seq FROM pg_stat_user_tables`,
  );
  const r = d.rows[0] as Record<string, string> | undefined;
  if (!r) throw new Error(`no pg_stat_database row for ${dbName}`);
  const tables: PgDatabaseCounters["tables"] = {};
  for (const row of t.rows as Record<string, string>[]) {
    tables[row.relname!] = { ins: Number(row.ins), upd: Number(row.upd), del: Number(row.del), idxScan: Number(row.idx), seqScan: Number(row.seq) };
  }
  return {
    xactCommit: Number(r.xact_commit),
    xactRollback: Number(r.xact_rollback),
    tupInserted: Number(r.tup_inserted),
    tupUpdated: Number(r.tup_updated),
    tupDeleted: Number(r.tup_deleted),
    tables,
  };
}

/** CPU time (ms) of the Postgres backends connected to the database of `client` (other than its own). */
export async function pgBackendCpu(client: { query: (sql: string) => Promise<{ rows: any[] }> }): Promise<Map<number, number>> {
  const b = await client.query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`);
  const out = new Map<number, number>();
  for (const { pid } of b.rows as { pid: number }[]) {
    try {
      out.set(pid, procCpuMs(pid));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** CPU ms the backends used between two pgBackendCpu() snapshots (backends that appeared meanwhile count from 0). */
export const pgBackendCpuDelta = (before: Map<number, number>, after: Map<number, number>) =>
  [...after.entries()].reduce((sum, [pid, ms]) => sum + ms - (before.get(pid) ?? 0), 0);

let tasksetOk: boolean | null = null;
/** Whether `taskset` (util-linux) is there and works. */
export function hasTaskset(): boolean {
  if (tasksetOk === null) tasksetOk = spawnSync("taskset", ["-p", String(process.pid)], { stdio: "ignore" }).status === 0;
  return tasksetOk;
}

/**
 * Pins every thread of a running process to `cpu` (`taskset -a -p -c`); threads it starts later
 * inherit it. Returns false (and pins nothing) without taskset or with fewer CPUs.
 */
export function pinProcess(pid: number, cpu: number): boolean {
  if (!hasTaskset() || os.cpus().length <= cpu) return false;
  return spawnSync("taskset", ["-a", "-p", "-c", String(cpu), String(pid)], { stdio: "ignore" }).status === 0;
}

/** `cmd args` as run on `cpu` only (through `taskset -c`), or unchanged when pinning is not possible. */
export function pinnedCommand(cpu: number | null, cmd: string, args: string[]): [string, string[]] {
  if (cpu === null || !hasTaskset() || os.cpus().length <= cpu) return [cmd, args];
  return ["taskset", ["-c", String(cpu), cmd, ...args]];
}

/**
 * A Node script (run through tsx) as a child server process, optionally pinned to one CPU. The
 * script prints one JSON line with its `url` once it listens. Stopped at clean-up.
 */
export async function startScriptServer(
  script: string,
  args: string[],
  opts: { cpu?: number | null; env?: Record<string, string>; profileDir?: string | null } = {},
): Promise<{ url: string; pid: number; cpuMs(): number; stop: () => Promise<void> }> {
  const nodeArgs = opts.profileDir ? ["--cpu-prof", `--cpu-prof-dir=${opts.profileDir}`] : [];
  const [cmd, argv] = pinnedCommand(opts.cpu ?? null, process.execPath, [...nodeArgs, "--import", "tsx", path.resolve(REPO_ROOT, script), ...args]);
  const child = spawn(cmd, argv, { cwd: REPO_ROOT, env: { ...process.env, ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
  let err = "";
  child.stderr!.on("data", (d) => (err += String(d)));
  const stop = onCleanup(`${path.basename(script)} pid ${child.pid}`, () => stopChild(child, 5_000));
  const lines = readline.createInterface({ input: child.stdout! });
  try {
    const first = await new Promise<string>((resolve, reject) => {
      lines.once("line", resolve);
      child.once("exit", (code) => reject(new Error(`${script} exited (${code}) before listening: ${err.slice(-2000)}`)));
      setTimeout(() => reject(new Error(`${script} did not listen within 30 s: ${err.slice(-2000)}`)), 30_000).unref();
    });
    const { url } = JSON.parse(first) as { url: string };
    const pid = child.pid!;
    return { url, pid, cpuMs: () => procCpuMs(pid), stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

export interface LoadResult {
  /** Mean requests/s over the run (autocannon's per-second samples). */
  rps: number;
  /** Completed requests. */
  total: number;
  p50: number;
  p99: number;
  /** Average latency, ms. */
  mean: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  /** Seconds. */
  duration: number;
}

/**
 * autocannon (a devDependency) against `url` in a process of its own, pinned to `cpu` when given:
 * POST `body` (JSON) with `headers`, `connections` connections for `durationSec`. Its -j summary, parsed.
 */
export async function autocannon(opts: {
  url: string;
  body: string;
  headers?: Record<string, string>;
  connections: number;
  durationSec: number;
  cpu?: number | null;
}): Promise<LoadResult> {
  const bin = path.join(REPO_ROOT, "node_modules/autocannon/autocannon.js");
  if (!fs.existsSync(bin)) throw new Error("autocannon is not installed: npm install (it is a devDependency)");
  const headers = { "content-type": "application/json", ...opts.headers };
  const args = [
    bin,
    "-j",
    "-n",
    "-c",
    String(opts.connections),
    "-d",
    String(opts.durationSec),
    "-m",
    "POST",
    ...Object.entries(headers).flatMap(([k, v]) => ["-H", `${k}=${v}`]),
    "-b",
    opts.body,
    opts.url,
  ];
  const [cmd, argv] = pinnedCommand(opts.cpu ?? null, process.execPath, args);
  const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
  const kill = onCleanup(`autocannon pid ${child.pid}`, () => stopChild(child, 2_000));
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += String(d)));
  child.stderr!.on("data", (d) => (err += String(d)));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (c) => resolve(c));
  });
  await kill();
  const line = out.split("\n").filter((l) => l.trim().startsWith("{")).pop();
  if (code !== 0 || !line) throw new Error(`autocannon exited with ${code}: ${err.slice(-1000)} ${out.slice(-500)}`);
  const r = JSON.parse(line) as {
    requests: { average: number; total: number };
    latency: { p50: number; p99: number; average: number };
    non2xx: number;
    errors: number;
    timeouts: number;
    duration: number;
  };
  return {
    rps: r.requests.average,
    total: r.requests.total,
    p50: r.latency.p50,
    p99: r.latency.p99,
    mean: r.latency.average,
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    duration: r.duration,
  };
}

export interface StatementCounts {
  /** Statements executed: Execute messages of the extended protocol plus simple-protocol queries. */
  statements: number;
  /** Transaction-control statements among them (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, ...). */
  txControl: number;
  /** Client -> server writes that reached the proxy (a rough count of round trips). */
  writes: number;
  /** By statement text (whitespace collapsed, first 160 characters). */
  byText: Map<string, number>;
}

/**
 * A TCP proxy in front of Postgres that counts the statements its clients run (Postgres has no
 * statement counter without pg_stat_statements in shared_preload_libraries). It reads the frontend
 * protocol: simple queries ('Q') and the extended protocol's Parse ('P': statement name -> text),
 * Bind ('B': portal -> statement) and Execute ('E'). For a diagnostic run only: the extra hop adds
 * latency to every query. Use `url` as the client's DATABASE_URL; closed at clean-up.
 */
export async function startStatementCounter(databaseUrl: string): Promise<{ url: string; counts(): StatementCounts; reset(): void; close(): Promise<void> }> {
  const target = new URL(databaseUrl);
  let c: StatementCounts = { statements: 0, txControl: 0, writes: 0, byText: new Map() };
  const sockets = new Set<net.Socket>();
  const norm = (q: string) => q.replace(/\s+/g, " ").trim().slice(0, 160);
  const count = (text: string) => {
    c.statements++;
    if (/^(BEGIN|START|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b/i.test(text)) c.txControl++;
    c.byText.set(text, (c.byText.get(text) ?? 0) + 1);
  };
  const cstr = (b: Buffer, at: number): [string, number] => {
    const end = b.indexOf(0, at);
    return [b.toString("utf8", at, end), end + 1];
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 5432), target.hostname);
    sockets.add(client).add(upstream);
    const statements = new Map<string, string>(); // prepared statement name -> text
    const portals = new Map<string, string>(); // portal -> text
    let buf: Buffer = Buffer.alloc(0);
    let startup = true;
    client.on("data", (d: Buffer) => {
      c.writes++;
      upstream.write(d);
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      for (;;) {
        if (startup) {
          if (buf.length < 8) break;
          const len = buf.readInt32BE(0);
          if (buf.length < len) break;
          const code = buf.readInt32BE(4);
          buf = buf.subarray(len);
          if (code === 196608) startup = false; // StartupMessage; SSLRequest/GSSENCRequest come before it
          continue;
        }
        if (buf.length < 5) break;
        const len = buf.readInt32BE(1);
        if (buf.length < len + 1) break;
        const type = String.fromCharCode(buf[0]!);
        const body = buf.subarray(5, len + 1);
        buf = buf.subarray(len + 1);
        if (type === "Q") count(norm(cstr(body, 0)[0]));
        else if (type === "P") {
          const [name, at] = cstr(body, 0);
          statements.set(name, norm(cstr(body, at)[0]));
        } else if (type === "B") {
          const [portal, at] = cstr(body, 0);
          portals.set(portal, statements.get(cstr(body, at)[0]) ?? "(unknown statement)");
        } else if (type === "E") count(portals.get(cstr(body, 0)[0]) ?? "(unknown portal)");
      }
      if (!buf.length) buf = Buffer.alloc(0);
      else buf = Buffer.from(buf); // do not pin the large chunk
    });
    upstream.on("data", (d) => client.write(d));
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as net.AddressInfo;
  const url = new URL(databaseUrl);
  url.hostname = "127.0.0.1";
  url.port = String(port);
  const close = onCleanup(`statement counter :${port}`, async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return {
    url: url.toString(),
    counts: () => ({ ...c, byText: new Map(c.byText) }),
    reset: () => (c = { statements: 0, txControl: 0, writes: 0, byText: new Map() }),
    close,
  };
}

// ---- fan-out and million scenarios: a dist/ that matches src/ --------------------------------------

let haulBuildChecked = false;

/**
 * `npm start` compiles src/ before it runs dist/main.js; startHaul builds only when dist/main.js is
 * missing, so after an edit it would benchmark the previous build. This rebuilds dist/
 * (scripts/build-server.mjs, under a second) when any file under src/ is newer than dist/main.js;
 * checked once per bench process. Nothing to do when BENCH_HAUL_ENTRY names another entry.
 */
export function ensureFreshHaulBuild(log: (m: string) => void): void {
  if (haulBuildChecked) return;
  haulBuildChecked = true;
  const entry = process.env.BENCH_HAUL_ENTRY?.trim() || "dist/main.js";
  if (entry !== "dist/main.js") return;
  const built = path.join(HAUL_ROOT, entry);
  const newest = (dir: string): number =>
    fs.readdirSync(dir, { withFileTypes: true }).reduce((m, d) => {
      const p = path.join(dir, d.name);
      return Math.max(m, d.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs);
    }, 0);
  if (fs.existsSync(built) && fs.statSync(built).mtimeMs >= newest(path.join(HAUL_ROOT, "src"))) return;
  log("dist/ is older than src/: node scripts/build-server.mjs (as `npm start` does)");
  const r = spawnSync(process.execPath, ["scripts/build-server.mjs"], { cwd: HAUL_ROOT, stdio: ["ignore", "ignore", "inherit"] });
  if (r.status !== 0) throw new Error(`scripts/build-server.mjs exited with ${r.status}`);
}
