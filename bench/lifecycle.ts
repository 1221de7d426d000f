// Job lifecycle throughput (issue 6, target 1): N one-file jobs of 1 KiB from the loopback origin
// (bench/origin-server.ts, a process of its own), each created, resumed, transferred and completed
// through haul's public GraphQL API, against graphile-worker 0.17 running N no-op jobs at
// concurrency 4 on the same Postgres, in the same run. Target: haul >= 0.5x.
//
// haul: a child process as `npm start` runs it, HAUL_WORKER on, HAUL_MAX_TRANSFERS=16. The bench
// sends createJobs(resume: true) in batches of 50 (2 calls in flight, at most 256 jobs between
// createJobs and ACKNOWLEDGED), listens to jobStateChanged
// (every job, graphql-ws, from the eventCursor taken before the first job: nothing is missed) and
// sends completeJobs for every job whose TRANSFERRED event arrived while the previous completeJobs
// was in flight. jobs/s = N / (first createJobs sent -> last job answered ACKNOWLEDGED). After a
// warm-up of 32 jobs. A diagnostic row drives the same jobs one call per job (createJob + resumeJob
// x 16 in flight, completeJob on each TRANSFERRED), as a client without the batch calls would.
//
// graphile-worker: in this process (its own pool of Postgres connections), its own fresh database,
// a no-op task, concurrency 4, a silent logger (haul runs at HAUL_LOG_LEVEL=warn). Each run: one
// addJobs() of N jobs (one statement), timed from the call to the N-th job:success. After a warm-up
// of 200 jobs; runs before and after haul's, the median counts.
//
// Also printed: what haul made Postgres do per job (pg_stat_database and pg_stat_user_tables deltas
// of its database: committed transactions, rows written per table, index scans), its job events per
// job (five durable transitions: created, resumed, transferring, transferred, acknowledged), and
// CPU per job in haul and in its Postgres backends.
import pg from "pg";
import WebSocket from "ws";
import { createClient, type Client } from "graphql-ws";
import { Logger, makeWorkerUtils, run as runGraphileWorker, type Runner, type WorkerUtils } from "graphile-worker";
import {
  type BenchOptions,
  type HaulChild,
  type PgDatabaseCounters,
  type Row,
  type Scenario,
  createBareDatabase,
  createDatabase,
  mapPool,
  median,
  onCleanup,
  pgBackendCpu,
  pgBackendCpuDelta,
  pgDatabaseCounters,
  recordWindow,
  seriesPaths,
  startHaul,
  startOriginProcess,
  startStatementCounter,
} from "./lib.js";

const IN_FLIGHT = 16;
const MAX_TRANSFERS = 16;
const GRAPHILE_CONCURRENCY = 4;
const FILE_SIZE = 1024;

const CREATE = `mutation($input: CreateJobInput!) { createJob(input: $input) { job { id } } }`;
const CREATE_MANY = `mutation($input: [CreateJobInput!]!) { createJobs(input: $input, resume: true) { job { id } } }`;
const COMPLETE_MANY = `mutation($ids: [ID!]!) { completeJobs(ids: $ids) { job { id state } warnings } }`;
/** batch mode: jobs per createJobs call, calls in flight */
const CREATE_BATCH = 50;
const CREATE_IN_FLIGHT = 2;
/** batch mode: jobs between createJobs and ACKNOWLEDGED at most (a client keeps a bounded window). */
const MAX_OUTSTANDING = 256;
const RESUME = `mutation($id: ID!) { resumeJob(id: $id) { job { id } } }`;
const COMPLETE = `mutation($id: ID!) { completeJob(id: $id) { job { state } warnings } }`;
const STATE_CHANGED = `subscription($after: String) { jobStateChanged(after: $after) { state job { id } error { code message } } }`;

// ---- graphile-worker --------------------------------------------------------------------------------

interface GraphileBaseline {
  /** Times N no-op jobs: addJobs of N, then wait for N completions; ms. */
  once(n: number): Promise<number>;
  stop(): Promise<void>;
}

async function startGraphile(opts: BenchOptions): Promise<GraphileBaseline> {
  const db = await createBareDatabase("gw");
  const silent = new Logger(() => () => {});
  let utils: WorkerUtils | null = null;
  let runner: Runner | null = null;
  // Our own pool, so that its idle connections are closed (and their errors handled) before the
  // database is dropped: a connection terminated by the drop must not crash the bench.
  const pgPool = new pg.Pool({ connectionString: db.url, max: GRAPHILE_CONCURRENCY + 4 });
  pgPool.on("error", () => {});
  const stop = onCleanup("graphile-worker", async () => {
    await Promise.resolve(runner?.stop()).catch(() => {});
    await Promise.resolve(utils?.release()).catch(() => {});
    await pgPool.end().catch(() => {});
    await db.drop();
  });
  try {
    utils = await makeWorkerUtils({ pgPool, logger: silent });
    await utils.migrate();
    let done = 0;
    let failed = 0;
    let waiter: { n: number; resolve: () => void } | null = null;
    runner = await runGraphileWorker({
      pgPool,
      concurrency: GRAPHILE_CONCURRENCY,
      noHandleSignals: true,
      pollInterval: 1000,
      logger: silent,
      taskList: { noop: async () => {} },
    });
    runner.events.on("job:success", () => {
      done++;
      if (waiter && done >= waiter.n) waiter.resolve();
    });
    runner.events.on("job:error", () => failed++);
    const u = utils;
    const once = async (n: number) => {
      done = 0;
      const all = new Promise<void>((resolve) => (waiter = { n, resolve }));
      const t0 = performance.now();
      await u.addJobs(Array.from({ length: n }, (_, i) => ({ identifier: "noop", payload: { i } })));
      await Promise.race([all, new Promise((_, reject) => setTimeout(() => reject(new Error(`graphile-worker: ${done}/${n} jobs done after 120 s`)), 120_000).unref())]);
      const ms = performance.now() - t0;
      waiter = null;
      if (failed) throw new Error(`graphile-worker: ${failed} jobs failed`);
      return ms;
    };
    await once(200); // warm-up
    opts.log(`graphile-worker 0.17 on ${db.name}, concurrency ${GRAPHILE_CONCURRENCY}`);
    return { once, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

// ---- haul -------------------------------------------------------------------------------------------

interface HaulDriver {
  /** Runs jobs for `paths` through the lifecycle; resolves with the ms from the first createJob to the last ACKNOWLEDGED. */
  batch(label: string, paths: string[]): Promise<number>;
  close(): Promise<void>;
}

type Mode = "batch" | "single";

async function driveHaul(h: HaulChild, originUrl: string, mode: Mode = "batch"): Promise<HaulDriver> {
  // One subscription for the child's life, from the cursor of "now": every later transition arrives.
  const { eventCursor } = await h.gql<{ eventCursor: string }>(`{ eventCursor }`);
  const transferred = new Map<string, (err?: Error) => void>();
  const early = new Set<string>(); // TRANSFERRED before createJob's answer was processed (cannot happen, but cheap)
  const wsUrl = h.graphqlUrl.replace(/^http/, "ws");
  const client: Client = createClient({
    url: wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${h.token}` },
    lazy: false,
    retryAttempts: 0,
  });
  let subError: unknown = null;
  const unsubscribe = client.subscribe<{ jobStateChanged: { state: string; job: { id: string }; error: { code: string; message: string } | null } }>(
    { query: STATE_CHANGED, variables: { after: eventCursor } },
    {
      next: (msg) => {
        const e = msg.data?.jobStateChanged;
        if (!e) {
          subError = new Error(`jobStateChanged: ${JSON.stringify(msg.errors ?? msg)}`);
          for (const cb of transferred.values()) cb(subError as Error);
          return;
        }
        if (e.state === "TRANSFERRED") {
          const cb = transferred.get(e.job.id);
          if (cb) cb();
          else early.add(e.job.id);
        } else if (e.state === "ERROR" || e.state === "TRANSIENT_ERROR") {
          transferred.get(e.job.id)?.(new Error(`job ${e.job.id} went to ${e.state}: ${JSON.stringify(e.error)}`));
        }
      },
      error: (err) => {
        subError = err;
        for (const cb of transferred.values()) cb(err instanceof Error ? err : new Error(JSON.stringify(err)));
      },
      complete: () => {},
    },
  );

  const untilTransferred = (id: string) =>
    new Promise<void>((resolve, reject) => {
      if (subError) return reject(subError instanceof Error ? subError : new Error(String(subError)));
      if (early.delete(id)) return resolve();
      const timer = setTimeout(() => reject(new Error(`job ${id}: no TRANSFERRED event after 120 s; haul output: ${h.output().slice(-2000)}`)), 120_000);
      transferred.set(id, (err) => {
        clearTimeout(timer);
        transferred.delete(id);
        if (err) reject(err);
        else resolve();
      });
    });

  // batch mode: createJobs(resume: true) in batches; completeJobs for every job whose TRANSFERRED
  // event arrived while the previous completeJobs was in flight (group completion).
  const pendingComplete: { id: string; resolve: () => void; reject: (e: Error) => void }[] = [];
  let completing = false;
  const flushComplete = async (): Promise<void> => {
    if (completing) return;
    completing = true;
    try {
      while (pendingComplete.length) {
        const batch = pendingComplete.splice(0, 500);
        try {
          const r = await h.gql<{ completeJobs: ({ job: { id: string; state: string }; warnings: string[] } | null)[] }>(COMPLETE_MANY, { ids: batch.map((b) => b.id) });
          r.completeJobs.forEach((c, i) => {
            if (!c || c.job.state !== "ACKNOWLEDGED" || c.warnings.length) batch[i]!.reject(new Error(`completeJobs ${batch[i]!.id}: ${JSON.stringify(c)}`));
            else batch[i]!.resolve();
          });
        } catch (err) {
          for (const b of batch) b.reject(err as Error);
        }
      }
    } finally {
      completing = false;
    }
  };
  const completeBatched = (id: string) =>
    new Promise<void>((resolve, reject) => {
      pendingComplete.push({ id, resolve, reject });
      void flushComplete();
    });

  const runBatched = async (label: string, paths: string[]) => {
    const t0 = performance.now();
    const completions: Promise<void>[] = [];
    const chunks: string[][] = [];
    for (let i = 0; i < paths.length; i += CREATE_BATCH) chunks.push(paths.slice(i, i + CREATE_BATCH));
    let outstanding = 0;
    const room: (() => void)[] = [];
    await mapPool(chunks, CREATE_IN_FLIGHT, async (chunk, k) => {
      while (outstanding + chunk.length > MAX_OUTSTANDING) await new Promise<void>((r) => room.push(r));
      outstanding += chunk.length;
      const { createJobs } = await h.gql<{ createJobs: { job: { id: string } }[] }>(CREATE_MANY, {
        input: chunk.map((p, i) => ({ displayName: `${label} ${k * CREATE_BATCH + i}`, files: [{ remoteUrl: `${originUrl}${p}`, localPath: `${label}${p}` }] })),
      });
      for (const { job } of createJobs) {
        const done = untilTransferred(job.id)
          .then(() => completeBatched(job.id))
          .finally(() => {
            outstanding--;
            room.shift()?.();
          });
        done.catch(() => {});
        completions.push(done);
      }
    });
    await Promise.all(completions);
    return performance.now() - t0;
  };

  return {
    async batch(label, paths) {
      if (mode === "batch") return runBatched(label, paths);
      const t0 = performance.now();
      const completions: Promise<void>[] = [];
      await mapPool(paths, IN_FLIGHT, async (p, i) => {
        const { createJob } = await h.gql<{ createJob: { job: { id: string } } }>(CREATE, {
          input: { displayName: `${label} ${i}`, files: [{ remoteUrl: `${originUrl}${p}`, localPath: `${label}${p}` }] },
        });
        const id = createJob.job.id;
        const done = untilTransferred(id);
        await h.gql(RESUME, { id });
        const completed = done.then(async () => {
          const r = await h.gql<{ completeJob: { job: { state: string }; warnings: string[] } }>(COMPLETE, { id });
          if (r.completeJob.job.state !== "ACKNOWLEDGED" || r.completeJob.warnings.length) {
            throw new Error(`completeJob ${id}: ${JSON.stringify(r.completeJob)}`);
          }
        });
        completed.catch(() => {}); // awaited below, by Promise.all
        completions.push(completed);
      });
      await Promise.all(completions);
      return performance.now() - t0;
    },
    async close() {
      unsubscribe();
      await client.dispose();
    },
  };
}

// ---- the scenario -----------------------------------------------------------------------------------

const delta = (a: PgDatabaseCounters, b: PgDatabaseCounters) => {
  const tables: Record<string, { ins: number; upd: number; del: number; idxScan: number; seqScan: number }> = {};
  for (const [name, t] of Object.entries(b.tables)) {
    const s = a.tables[name] ?? { ins: 0, upd: 0, del: 0, idxScan: 0, seqScan: 0 };
    tables[name] = { ins: t.ins - s.ins, upd: t.upd - s.upd, del: t.del - s.del, idxScan: t.idxScan - s.idxScan, seqScan: t.seqScan - s.seqScan };
  }
  return {
    commits: b.xactCommit - a.xactCommit,
    rollbacks: b.xactRollback - a.xactRollback,
    rows: b.tupInserted + b.tupUpdated + b.tupDeleted - (a.tupInserted + a.tupUpdated + a.tupDeleted),
    tables,
  };
};

async function lifecycle(opts: BenchOptions): Promise<Row[]> {
  const n = opts.full ? 5000 : 500;
  const warm = 32;
  const origin = await startOriginProcess({ series: [{ prefix: "/lc/f", count: n, size: FILE_SIZE }, { prefix: "/warm/f", count: warm, size: FILE_SIZE }] });
  const db = await createDatabase();
  const stats = new pg.Client({ connectionString: db.url });
  await stats.connect();
  let graphile: GraphileBaseline | null = null;
  let driver: HaulDriver | null = null;
  let haul: HaulChild | null = null;
  try {
    graphile = await startGraphile(opts);
    const gwMs: number[] = [];
    const gwOnce = async () => {
      const ms = await graphile!.once(n);
      gwMs.push(ms);
      opts.log(`graphile-worker run ${gwMs.length}: ${n} no-op jobs in ${ms.toFixed(0)} ms = ${((n * 1000) / ms).toFixed(0)} jobs/s`);
    };
    await gwOnce();
    await gwOnce();

    haul = await startHaul({ databaseUrl: db.url, env: { HAUL_WORKER: "true", HAUL_MAX_TRANSFERS: String(MAX_TRANSFERS) }, profileDir: opts.profileDir });
    const h = haul;
    driver = await driveHaul(h, origin.url);
    opts.log(`haul pid ${h.pid} on ${db.name}, HAUL_MAX_TRANSFERS=${MAX_TRANSFERS}; warm-up of ${warm} jobs`);
    await driver.batch("warm", seriesPaths("/warm/f", warm));

    const events = async () => Number((await stats.query<{ n: string }>(`SELECT count(*)::text AS n FROM job_event`)).rows[0]!.n);
    const before = await pgDatabaseCounters(stats, db.name);
    const events0 = await events();
    const backends0 = await pgBackendCpu(stats);
    const cpu0 = h.cpuMs();
    const self0 = process.cpuUsage();
    const h0 = process.hrtime.bigint();
    const haulMs = await driver.batch("lc", seriesPaths("/lc/f", n));
    recordWindow(opts.profileDir, h.pid, `lifecycle: ${n} jobs`, h0, process.hrtime.bigint());
    const cpuMs = h.cpuMs() - cpu0;
    const self = process.cpuUsage(self0);
    const driverCpuMs = (self.user + self.system) / 1000;
    const pgCpuMs = pgBackendCpuDelta(backends0, await pgBackendCpu(stats));
    const eventsPerJob = ((await events()) - events0) / n;
    const after = await pgDatabaseCounters(stats, db.name);
    const d = delta(before, after);
    const haulRate = (n * 1000) / haulMs;
    const acknowledged = (await h.gql<{ jobs: { totalCount: number } }>(`{ jobs(filter: { states: [ACKNOWLEDGED], allUsers: true }) { totalCount } }`)).jobs.totalCount;
    if (acknowledged < n) throw new Error(`only ${acknowledged} of ${n + warm} jobs ACKNOWLEDGED`);
    opts.log(
      `haul: ${n} jobs in ${haulMs.toFixed(0)} ms = ${haulRate.toFixed(0)} jobs/s; haul CPU ${cpuMs} ms (${(cpuMs / n).toFixed(2)} ms/job), ` +
        `its Postgres backends ${pgCpuMs} ms (${(pgCpuMs / n).toFixed(2)} ms/job); the bench client ${driverCpuMs.toFixed(0)} ms`,
    );
    await driver.close();
    driver = null;
    // Diagnostic: the same jobs driven one call per job (createJob, resumeJob, completeJob each).
    const m = Math.min(n, 500); // a diagnostic: the quick size is enough
    const single = await driveHaul(h, origin.url, "single");
    const singleMs = await single.batch("one", seriesPaths("/lc/f", m));
    await single.close();
    const singleRate = (m * 1000) / singleMs;
    opts.log(`haul, one call per job: ${m} jobs in ${singleMs.toFixed(0)} ms = ${singleRate.toFixed(0)} jobs/s`);
    await h.stop();

    await gwOnce();

    // Diagnostic: statements per job, counted by a proxy in front of Postgres (pg_stat_statements is
    // not loaded), with a second haul child on the same database: not timed (the proxy adds a hop).
    let statementsNote = "";
    if (!process.env.BENCH_PG_SOCKET?.trim()) {
      const m = opts.full ? 500 : 100;
      const counter = await startStatementCounter(db.url);
      const d2 = await startHaul({ databaseUrl: counter.url, env: { HAUL_WORKER: "true", HAUL_MAX_TRANSFERS: String(MAX_TRANSFERS) } });
      const drv2 = await driveHaul(d2, origin.url);
      await drv2.batch("warm2", seriesPaths("/warm/f", warm));
      counter.reset();
      await drv2.batch("stmts", seriesPaths("/lc/f", m));
      const c = counter.counts();
      await drv2.close();
      await d2.stop();
      await counter.close();
      const top = [...c.byText.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15);
      opts.log(
        `statements per job (${m} jobs through a counting proxy): ${(c.statements / m).toFixed(1)}, of which ${(c.txControl / m).toFixed(1)} BEGIN/COMMIT/...; ` +
          `${(c.writes / m).toFixed(1)} client writes (round trips); most frequent:\n${top.map(([t, k]) => `      ${(k / m).toFixed(2).padStart(6)}  ${t}`).join("\n")}`,
      );
      statementsNote = ` ${(c.statements / m).toFixed(1)} SQL statements per job (${(c.txControl / m).toFixed(1)} of them transaction control), counted by a proxy in a separate untimed run of ${m} jobs.`;
    }
    const gwRate = (n * 1000) / median(gwMs);
    const ratio = haulRate / gwRate;
    const per = (x: number) => (x / n).toFixed(2);
    const tableNote = Object.entries(d.tables)
      .filter(([, t]) => t.ins + t.upd + t.del + t.idxScan + t.seqScan > 0)
      .sort((a, b) => b[1].ins + b[1].upd + b[1].del - (a[1].ins + a[1].upd + a[1].del))
      .map(([name, t]) => `${name} ${[t.ins && `ins ${per(t.ins)}`, t.upd && `upd ${per(t.upd)}`, t.del && `del ${per(t.del)}`, `idx scans ${per(t.idxScan)}`, t.seqScan && `seq scans ${per(t.seqScan)}`].filter(Boolean).join(" ")}`)
      .join("; ");
    opts.log(`haul per job: ${per(d.commits)} committed transactions, ${per(d.rows)} rows written, ${eventsPerJob.toFixed(2)} job events; by table: ${tableNote}`);
    return [
      {
        scenario: `lifecycle: ${n} x 1 KiB jobs`,
        baseline: `graphile-worker ${gwRate.toFixed(0)} jobs/s`,
        haul: `haul ${haulRate.toFixed(0)} jobs/s`,
        ratio,
        target: ">= 0.50x",
        pass: ratio >= 0.5,
        note:
          `graphile-worker 0.17: ${n} no-op jobs, concurrency ${GRAPHILE_CONCURRENCY}, one addJobs() to the last job:success, median of ${gwMs.length} runs ` +
          `(${gwMs.map((ms) => ((n * 1000) / ms).toFixed(0)).join(", ")} jobs/s; 2 before haul, 1 after). haul: createJobs(resume: true) of ${CREATE_BATCH} jobs x ${CREATE_IN_FLIGHT} in flight (at most ${MAX_OUTSTANDING} jobs not yet ACKNOWLEDGED), ` +
          `completeJobs for the jobs whose TRANSFERRED event (graphql-ws) arrived meanwhile, HAUL_MAX_TRANSFERS=${MAX_TRANSFERS}, first createJobs to last ACKNOWLEDGED. ` +
          `haul per job: ${per(d.commits)} committed transactions (pg_stat_database xact_commit, its database, incl. reads), ${per(d.rows)} rows written, ` +
          `${eventsPerJob.toFixed(2)} job events; by table: ${tableNote}; CPU ${(cpuMs / n).toFixed(2)} ms in haul + ${(pgCpuMs / n).toFixed(2)} ms in its Postgres backends.${statementsNote}`,
      },
      {
        scenario: `  diag.: one API call per job`,
        baseline: `graphile-worker ${gwRate.toFixed(0)} jobs/s`,
        haul: `haul ${singleRate.toFixed(0)} jobs/s`,
        ratio: singleRate / gwRate,
        target: ">= 0.50x",
        pass: singleRate / gwRate >= 0.5,
        note: `${m} of the same jobs on the same haul process, driven one call per job: createJob + resumeJob x ${IN_FLIGHT} in flight, completeJob on each TRANSFERRED event.`,
      },
    ];
  } finally {
    await driver?.close().catch(() => {});
    await haul?.stop();
    await graphile?.stop();
    await stats.end().catch(() => {});
    await origin.close();
    await db.drop();
  }
}

export const scenarios: Scenario[] = [{ name: "lifecycle: job throughput vs graphile-worker", run: lifecycle }];
