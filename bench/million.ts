// A million jobs (issue 6, target 4): M one-file jobs seeded straight into Postgres (INSERT ...
// SELECT generate_series, not the API) in a fresh migrated database, against a second database of
// 10,000 jobs seeded the same way (the baseline), both measured in the same run:
//
//  (a) `jobs(first: 50, filter: { states: [SUSPENDED] })` with totalCount, ~200 sequential requests
//      to a haul child on each database (requests interleaved between the two), as an ADMIN with
//      allUsers and as a USER (its own jobs): p50/p99 from the client; target p50 <= 10 ms.
//      totalCount is capped at 10,000 (src/graphql/schema/job.ts TOTAL_COUNT_CAP), counted by
//      src/store/job-counts.ts: `count(*)` of `SELECT 1 ... LIMIT 10000`, no ORDER BY.
//  (b) the worker's claim (claimJobs of src/store/claim.ts: its statement, run through `pg` inside a
//      transaction that is rolled back, so every run claims from the same rows), at M jobs and at
//      10,000: p50; target M <= 1.5x 10,000.
//
//   quick: M = 100,000 vs 10,000; full: M = 1,000,000 vs 10,000.
//   BENCH_EXPLAIN=1 prints EXPLAIN (ANALYZE, BUFFERS) of the claim and of the page's two statements
//   at M jobs (otherwise only their execution times are logged).
//
// The seed: every job has one file; states are spread at random (fixed seed): 55% ACKNOWLEDGED, 33%
// CANCELLED, 6% SUSPENDED, 2% QUEUED, 1% each TRANSIENT_ERROR (retry due in an hour), ERROR,
// TRANSFERRING (leased), TRANSFERRED; 10 owners (user0..user9); created over the past year; priority
// mostly NORMAL (5% HIGH, 2% LOW). No job_event rows (neither measured statement reads them).
// Then VACUUM (ANALYZE), as autovacuum would after a bulk load (it also sets the visibility map,
// which index-only scans need). The haul children run with HAUL_WORKER=off: nothing else touches
// the seeded rows.
import path from "node:path";
import { pathToFileURL } from "node:url";
import pg from "pg";
import {
  type BenchOptions,
  type HaulChild,
  type Row,
  type Scenario,
  BENCH_TOKEN,
  HAUL_ROOT,
  createDatabase,
  ensureFreshHaulBuild,
  gql,
  recordWindow,
  startHaul,
} from "./lib.js";

const OWNERS = 10;
const SMALL = 10_000;

// ---- seeding ---------------------------------------------------------------------------------------

const STATES: [string, number][] = [
  ["ACKNOWLEDGED", 0.55],
  ["CANCELLED", 0.88],
  ["SUSPENDED", 0.94],
  ["QUEUED", 0.96],
  ["TRANSIENT_ERROR", 0.97],
  ["ERROR", 0.98],
  ["TRANSFERRING", 0.99],
  ["TRANSFERRED", 1.01],
];

export function seedSql(m: number): string[] {
  const pick = `CASE ${STATES.map(([s, upTo]) => `WHEN r < ${upTo} THEN '${s}'`).join(" ")} END`;
  const failed = `st IN ('ERROR', 'TRANSIENT_ERROR')`;
  const done = `st IN ('ACKNOWLEDGED', 'TRANSFERRED')`;
  return [
    `SELECT setseed(0.42)`,
    `INSERT INTO job (id, type, display_name, priority, state, owner, error_context, error_code, error_message, error_count,
        files_total, files_transferred, bytes_total, bytes_transferred, retry_at, no_progress_since, active_since,
        created_at, modified_at, transfer_completed_at, version, lease_holder, lease_expires_at, lease_token)
     SELECT gen_random_uuid(), 'DOWNLOAD', 'seeded job ' || g,
        (CASE WHEN r2 < 0.05 THEN 'HIGH' WHEN r2 < 0.07 THEN 'LOW' ELSE 'NORMAL' END)::"JobPriority",
        st, 'user' || (g % ${OWNERS}),
        CASE WHEN ${failed} THEN 'REMOTE_FILE'::"ErrorContext" END,
        CASE WHEN ${failed} THEN 'HTTP_503' END,
        CASE WHEN ${failed} THEN 'HTTP 503 Service Unavailable' END,
        CASE WHEN ${failed} THEN 1 ELSE 0 END,
        1, CASE WHEN ${done} THEN 1 ELSE 0 END,
        1024, CASE WHEN ${done} THEN 1024 WHEN st = 'TRANSFERRING' THEN 512 ELSE 0 END,
        CASE WHEN st = 'TRANSIENT_ERROR' THEN now() + interval '1 hour' END,
        CASE WHEN st = 'TRANSIENT_ERROR' THEN created END,
        CASE WHEN st = 'TRANSFERRING' THEN now() END,
        created, created + interval '1 minute',
        CASE WHEN ${done} THEN created + interval '30 seconds' END,
        3,
        CASE WHEN st = 'TRANSFERRING' THEN 'bench-seed' END,
        CASE WHEN st = 'TRANSFERRING' THEN now() + interval '1 day' END,
        CASE WHEN st IN ('SUSPENDED', 'QUEUED', 'CANCELLED') THEN 0 ELSE 1 END
     FROM (
       SELECT g, r2, now() - interval '365 days' + g * (interval '365 days' / ${m}) AS created, (${pick})::"JobState" AS st
         FROM (SELECT g, random() AS r, random() AS r2 FROM generate_series(1, ${m}) g) a
     ) s`,
    `INSERT INTO file (id, job_id, position, remote_url, local_path, bytes_total, bytes_transferred, transferred, completed, created_at)
     SELECT gen_random_uuid(), id, 0, 'https://downloads.example.com/seed/' || id || '.bin', 'seed/' || id || '.bin', 1024, bytes_transferred,
            state IN ('ACKNOWLEDGED', 'TRANSFERRED'), state = 'ACKNOWLEDGED', created_at
       FROM job`,
  ];
}

interface Seeded {
  url: string;
  name: string;
  jobs: number;
  ms: number;
  states: Record<string, number>;
  /** SUSPENDED jobs of the USER whose pages are measured */
  userSuspended: number;
  size: string;
}

/** The owner whose USER token lists its own jobs. */
const USER = "user3";

export async function seed(m: number): Promise<Seeded> {
  const db = await createDatabase();
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    const t0 = performance.now();
    await c.query("BEGIN");
    for (const sql of seedSql(m)) await c.query(sql);
    await c.query("COMMIT");
    await c.query("VACUUM (ANALYZE) job");
    await c.query("VACUUM (ANALYZE) file");
    const ms = performance.now() - t0;
    const st = await c.query<{ state: string; n: string }>(`SELECT state::text, count(*)::text AS n FROM job GROUP BY 1 ORDER BY 1`);
    const size = await c.query<{ s: string }>(`SELECT pg_size_pretty(pg_database_size(current_database())) AS s`);
    const mine = await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM job WHERE owner = $1 AND state = 'SUSPENDED'`, [USER]);
    return {
      url: db.url,
      name: db.name,
      jobs: m,
      ms,
      states: Object.fromEntries(st.rows.map((r) => [r.state, Number(r.n)])),
      userSuspended: Number(mine.rows[0]!.n),
      size: size.rows[0]!.s,
    };
  } finally {
    await c.end();
  }
}

// ---- (a) the page ------------------------------------------------------------------------------------

const PAGE = `query($f: JobFilter) { jobs(first: 50, filter: $f) { totalCount pageInfo { hasNextPage endCursor }
  edges { node { id displayName state owner priority times { createdAt modifiedAt } progress { bytesTotal bytesTransferred filesTotal filesTransferred } } } } }`;

interface Client {
  label: string;
  run(): Promise<{ totalCount: number; rows: number }>;
}

function pageClient(h: HaulChild, label: string, token: string, filter: Record<string, unknown>): Client {
  return {
    label,
    run: async () => {
      const r = await gql<{ jobs: { totalCount: number; edges: unknown[] } }>(h.graphqlUrl, PAGE, { f: filter }, token);
      return { totalCount: r.jobs.totalCount, rows: r.jobs.edges.length };
    },
  };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));

// ---- (b) the claim -----------------------------------------------------------------------------------

type ClaimJobs = (tx: unknown, holder: string, limit: number, leaseSeconds: number, maxPriorityRank?: number) => Promise<unknown[]>;

/** A stand-in for Prisma's transaction client: claimJobs only calls $queryRawUnsafe. Records the last statement. */
function pgTx(c: pg.Client, last: { sql: string; params: unknown[] }) {
  return {
    $queryRawUnsafe: async (sql: string, ...params: unknown[]) => {
      last.sql = sql;
      last.params = params;
      return (await c.query(sql, params)).rows;
    },
  };
}

async function explain(c: pg.Client, sql: string, params: unknown[]): Promise<{ text: string; execMs: number }> {
  await c.query("BEGIN");
  try {
    const r = await c.query<{ "QUERY PLAN": string }>(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, params);
    const text = r.rows.map((x) => x["QUERY PLAN"]).join("\n");
    return { text, execMs: Number(/Execution Time: ([\d.]+) ms/.exec(text)?.[1] ?? NaN) };
  } finally {
    await c.query("ROLLBACK");
  }
}

// The page's two statements (ADMIN with allUsers: no owner condition). Only EXPLAINed, for the
// report. PAGE_SQL as Prisma 7 sends it for the resolver of `jobs` (copied from the Postgres statement
// log, the column list shortened: it selects every column of job). COUNT_SQL as
// src/store/job-counts.ts sends it (the first 10,000 matching index entries, in any order).
// PRISMA_COUNT_SQL is what Prisma's count({ take }) sent before (an ORDER BY id, so every matching
// row is read and sorted before the LIMIT), for comparison.
const PAGE_SQL = `SELECT "public"."job"."id", "public"."job"."display_name", "public"."job"."state"::text, "public"."job"."owner", "public"."job"."created_at"
  FROM "public"."job" WHERE "public"."job"."state" IN (CAST($1::text AS "public"."JobState"))
 ORDER BY "public"."job"."created_at" ASC, "public"."job"."id" ASC LIMIT $2 OFFSET $3`;
const COUNT_SQL = `SELECT count(*)::int AS n FROM (SELECT 1 FROM job WHERE state IN ($1::"JobState") LIMIT $2) AS capped`;
const PRISMA_COUNT_SQL = `SELECT COUNT(*) AS "_count$_all" FROM (SELECT "public"."job"."id" FROM "public"."job"
  WHERE "public"."job"."state" IN (CAST($1::text AS "public"."JobState")) ORDER BY "public"."job"."id" ASC LIMIT $2 OFFSET $3) AS "sub"`;

// ---- the scenario ------------------------------------------------------------------------------------

async function million(opts: BenchOptions): Promise<Row[]> {
  const M = opts.full ? 1_000_000 : 100_000;
  const rounds = 200;
  const claimRounds = opts.full ? 500 : 300;
  const showPlans = process.env.BENCH_EXPLAIN === "1" || process.env.BENCH_EXPLAIN === "true";
  const fmtN = (n: number) => n.toLocaleString("en");
  ensureFreshHaulBuild(opts.log);

  const big = await seed(M);
  opts.log(`seeded ${fmtN(M)} jobs + ${fmtN(M)} files in ${(big.ms / 1000).toFixed(1)} s incl. VACUUM ANALYZE (${big.size}): ${JSON.stringify(big.states)}`);
  const small = await seed(SMALL);
  opts.log(`seeded ${fmtN(SMALL)} jobs + files in ${(small.ms / 1000).toFixed(1)} s (${small.size}): ${JSON.stringify(small.states)}`);

  // (a) pages, against a haul child on each database.
  const env = { HAUL_WORKER: "off" };
  const hs = await startHaul({ databaseUrl: small.url, env, profileDir: opts.profileDir });
  const hb = await startHaul({ databaseUrl: big.url, env, profileDir: opts.profileDir });
  const user = USER;
  const userToken = async (h: HaulChild) =>
    (await h.gql<{ createApiToken: { token: string } }>(`mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token } }`, { input: { user, role: "USER" } }))
      .createApiToken.token;
  const clients = {
    small: {
      admin: pageClient(hs, "ADMIN allUsers", BENCH_TOKEN, { states: ["SUSPENDED"], allUsers: true }),
      user: pageClient(hs, `USER ${user}`, await userToken(hs), { states: ["SUSPENDED"] }),
    },
    big: {
      admin: pageClient(hb, "ADMIN allUsers", BENCH_TOKEN, { states: ["SUSPENDED"], allUsers: true }),
      user: pageClient(hb, `USER ${user}`, await userToken(hb), { states: ["SUSPENDED"] }),
    },
  };
  const order = [
    ["small", "admin"],
    ["big", "admin"],
    ["small", "user"],
    ["big", "user"],
  ] as const;
  const seen: Record<string, { totalCount: number; rows: number }> = {};
  for (let i = 0; i < 20; i++) for (const [db, who] of order) seen[`${db}.${who}`] = await clients[db][who].run(); // warm-up
  const lat: Record<string, number[]> = { "small.admin": [], "big.admin": [], "small.user": [], "big.user": [] };
  const h0 = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) {
    // rotate the order every round, so that neither database always follows the other
    for (let k = 0; k < order.length; k++) {
      const [db, who] = order[(k + i) % order.length]!;
      const t0 = performance.now();
      await clients[db][who].run();
      lat[`${db}.${who}`]!.push(performance.now() - t0);
    }
  }
  recordWindow(opts.profileDir, hb.pid, `jobs pages at ${fmtN(M)} jobs`, h0, process.hrtime.bigint());
  recordWindow(opts.profileDir, hs.pid, `jobs pages at ${fmtN(SMALL)} jobs`, h0, process.hrtime.bigint());
  for (const k of Object.keys(lat)) opts.log(`page ${k}: p50 ${ms(pct(lat[k]!, 50))} ms, p99 ${ms(pct(lat[k]!, 99))} ms (totalCount ${seen[k]!.totalCount}, ${seen[k]!.rows} rows)`);
  await hb.stop();
  await hs.stop();

  // (b) the claim, and the plans.
  const { claimJobs } = (await import(pathToFileURL(path.join(HAUL_ROOT, "src/store/claim.ts")).href)) as { claimJobs: ClaimJobs };
  const cb = new pg.Client({ connectionString: big.url });
  const cs = new pg.Client({ connectionString: small.url });
  await cb.connect();
  await cs.connect();
  const claimMs: Record<"big" | "small", number[]> = { big: [], small: [] };
  const last = { sql: "", params: [] as unknown[] };
  const claimed: Record<"big" | "small", number> = { big: 0, small: 0 };
  type Plan = Awaited<ReturnType<typeof explain>>;
  let plans: { claim: Plan; claimSmall: Plan; page: Plan; count: Plan; prismaCount: Plan };
  try {
    const once = async (which: "big" | "small", record: boolean) => {
      const c = which === "big" ? cb : cs;
      await c.query("BEGIN");
      try {
        const t0 = performance.now();
        const got = await claimJobs(pgTx(c, last), "bench-claim", 8, 30);
        const t = performance.now() - t0;
        claimed[which] = got.length;
        if (record) claimMs[which].push(t);
      } finally {
        await c.query("ROLLBACK");
      }
    };
    for (let i = 0; i < 30; i++) for (const w of ["small", "big"] as const) await once(w, false);
    for (let i = 0; i < claimRounds; i++) for (const w of i % 2 ? (["big", "small"] as const) : (["small", "big"] as const)) await once(w, true);
    plans = {
      claim: await explain(cb, last.sql, last.params),
      claimSmall: await explain(cs, last.sql, last.params),
      page: await explain(cb, PAGE_SQL, ["SUSPENDED", 51, 0]),
      count: await explain(cb, COUNT_SQL, ["SUSPENDED", 10_000]),
      prismaCount: await explain(cb, PRISMA_COUNT_SQL, ["SUSPENDED", 10_000, 0]),
    };
  } finally {
    await cb.end();
    await cs.end();
  }
  const planLine = (p: { execMs: number }) => `${p.execMs.toFixed(2)} ms`;
  /** The access path of the claim's inner SELECT (the first scan node of the plan). */
  const scanOf = (p: { text: string }) => {
    const m = /(Index Scan|Index Only Scan|Bitmap Index Scan|Seq Scan)(?: using (\S+))? on job\b/.exec(p.text);
    const sorted = /Sort Key: job\.priority/.test(p.text);
    return m ? `${m[1]}${m[2] ? ` of ${m[2]}` : ""}${sorted ? " + sort" : ""}` : "?";
  };
  opts.log(
    `claim of 8: p50 ${ms(pct(claimMs.small, 50))} ms at ${fmtN(SMALL)} (claimed ${claimed.small}), ${ms(pct(claimMs.big, 50))} ms at ${fmtN(M)} (claimed ${claimed.big}); ` +
      `EXPLAIN ANALYZE at ${fmtN(M)}: claim ${planLine(plans.claim)}, page ${planLine(plans.page)}, totalCount (LIMIT 10000, no ORDER BY) ${planLine(plans.count)}, ` +
      `Prisma's count({ take }) as sent before (ORDER BY id LIMIT 10000) ${planLine(plans.prismaCount)}`,
  );
  if (showPlans) {
    for (const [name, p] of Object.entries(plans)) opts.log(`EXPLAIN (ANALYZE, BUFFERS) ${name} at ${fmtN(name === "claimSmall" ? SMALL : M)} jobs:\n${p.text}`);
  }

  const rows: Row[] = [];
  const mode = `${fmtN(M)} jobs`;
  const short = (n: number) => (n >= 1e6 ? `${n / 1e6}M` : `${n / 1000}k`);
  const suspended = (s: Seeded) => s.states.SUSPENDED ?? 0;
  for (const who of ["admin", "user"] as const) {
    const b = lat[`big.${who}`]!;
    const s = lat[`small.${who}`]!;
    const p50 = pct(b, 50);
    rows.push({
      scenario: `jobs page of 50 SUSPENDED + totalCount, ${who === "admin" ? "ADMIN allUsers" : "USER"}, ${mode}`,
      baseline: `10k jobs p50 ${ms(pct(s, 50))} / p99 ${ms(pct(s, 99))} ms`,
      haul: `${short(M)} jobs p50 ${ms(p50)} / p99 ${ms(pct(b, 99))} ms`,
      ratio: p50 / pct(s, 50),
      target: "p50 <= 10 ms",
      pass: p50 <= 10,
      note:
        `ratio = p50 at ${fmtN(M)} jobs / p50 at 10,000 (lower is better); ${rounds} sequential requests each, interleaved, after 20 warm-up ones, client-side (fetch over loopback); ` +
        `totalCount read ${seen[`big.${who}`]!.totalCount} at ${fmtN(M)} (${fmtN(who === "admin" ? suspended(big) : big.userSuspended)} ` +
        `SUSPENDED${who === "admin" ? "" : ` of ${user}`}) and ${seen[`small.${who}`]!.totalCount} at 10,000 (${fmtN(who === "admin" ? suspended(small) : small.userSuspended)})` +
        (who === "admin"
          ? `; EXPLAIN ANALYZE at ${fmtN(M)}: the page statement ${planLine(plans.page)}, the totalCount statement (src/store/job-counts.ts: LIMIT 10000, no ORDER BY) ` +
            `${planLine(plans.count)}, against Prisma's count({ take }) as sent before (ORDER BY id: every matching row read and sorted before the LIMIT) ${planLine(plans.prismaCount)}`
          : ""),
    });
  }
  const c50 = pct(claimMs.big, 50);
  const s50 = pct(claimMs.small, 50);
  rows.push({
    scenario: `claim 8 runnable jobs (SQL), ${mode}`,
    baseline: `10k jobs p50 ${ms(s50)} ms`,
    haul: `${short(M)} jobs p50 ${ms(c50)} ms`,
    ratio: c50 / s50,
    target: "<= 1.50x",
    pass: c50 / s50 <= 1.5,
    note:
      `ratio = p50 at ${fmtN(M)} / p50 at 10,000 (lower is better); claimJobs(tx, holder, 8, 30 s) of src/store/claim.ts, its statement run through pg in a transaction ` +
      `rolled back after each run (${claimRounds} runs each, interleaved, after 30 warm-up ones), round trip included; ` +
      `runnable: ${fmtN(big.states.QUEUED ?? 0)} QUEUED + ${fmtN(big.states.TRANSIENT_ERROR ?? 0)} TRANSIENT_ERROR (not yet due) at ${fmtN(M)}, ` +
      `${fmtN(small.states.QUEUED ?? 0)} + ${fmtN(small.states.TRANSIENT_ERROR ?? 0)} at 10,000; p99 ${ms(pct(claimMs.small, 99))} / ${ms(pct(claimMs.big, 99))} ms; ` +
      `EXPLAIN ANALYZE: ${planLine(plans.claim)} at ${fmtN(M)} (${scanOf(plans.claim)}), ${planLine(plans.claimSmall)} at 10,000 (${scanOf(plans.claimSmall)}); ` +
      `seeding: ${fmtN(M)} jobs + files in ${(big.ms / 1000).toFixed(1)} s (INSERT ... SELECT generate_series, VACUUM ANALYZE), ${big.size}`,
  });
  return rows;
}

export const scenarios: Scenario[] = [{ name: "million: job pages and claim at scale vs 10k jobs", run: million }];
