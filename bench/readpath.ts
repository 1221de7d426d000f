// Read-path benchmarks (issue 6, target 3): requests/s of haul's GraphQL reads against a bare
// graphql-yoga in the same run, with autocannon (POST, keep-alive) as the load generator in a
// process of its own.
//
//  a. `job(id)` (a USER token, the job exists) against a bare yoga `{ hello }`: target >= 0.5x.
//  b. a page of 50 jobs x 3 files (`jobs(first: 50) { edges { node { ... files { ... } } } }`) read
//     from Postgres against a bare yoga serving the same response from memory: target >= 0.5x.
//
// Pinning (taskset): every server (haul and the bare yoga) on CPU 0, autocannon on CPU 1; Postgres
// is not pinned (it is shared by the machine, and only haul uses it). Every server is warmed up
// first with 1-second autocannon runs until it has served 3,000 requests ({ hello }, job(id)) or 600
// (pages), at most 15 s (30 s in full mode); the measured runs are interleaved baseline, haul, baseline, haul (quick:
// one pair per query, 5 s each; full: two pairs, 15 s each). Also printed: each server's CPU time
// per request (it is CPU-bound on its core), and haul's SQL statements per request (a counting
// proxy in front of Postgres, a second haul child, untimed).
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  type BenchOptions,
  type HaulChild,
  type LoadResult,
  type Row,
  type Scenario,
  autocannon,
  createDatabase,
  ensureFreshHaulBuild,
  gql,
  hasTaskset,
  mapPool,
  median,
  pinProcess,
  recordWindow,
  sleep,
  startHaul,
  startScriptServer,
  startStatementCounter,
  tempDir,
} from "./lib.js";

const CONNECTIONS = 32;
const SERVER_CPU = 0;
const LOAD_CPU = 1;

const JOB_QUERY = `query($id: ID!) { job(id: $id) { id displayName state progress { bytesTransferred filesTransferred } } }`;
const PAGE_QUERY = `{ jobs(first: 50) { edges { node { id displayName state progress { bytesTransferred } files { edges { node { id localPath bytesTransferred } } } } } } }`;
const HELLO_QUERY = `{ hello }`;

interface Target {
  label: string;
  url: string;
  body: string;
  headers: Record<string, string>;
  /** haul child (for the profile window), null for the bare server */
  haul: HaulChild | null;
  /** CPU time of the server process so far (all threads), ms */
  cpuMs(): number;
}

interface Measured extends LoadResult {
  /** server CPU (all threads) per request, ms */
  cpuPerRequest: number;
}

/** One POST as autocannon sends it, checked: 200 with data and no errors. Returns the response text. */
async function check(t: Target, expect: (data: any) => boolean): Promise<string> {
  const res = await fetch(t.url, { method: "POST", headers: { "content-type": "application/json", ...t.headers }, body: t.body });
  const text = await res.text();
  const body = JSON.parse(text) as { data?: unknown; errors?: unknown[] };
  if (res.status !== 200 || body.errors?.length || !body.data || !expect(body.data)) {
    throw new Error(`${t.label}: unexpected response ${res.status} ${text.slice(0, 500)}`);
  }
  return text;
}

async function load(opts: BenchOptions, t: Target, durationSec: number, measured: boolean): Promise<Measured> {
  const cpu = hasTaskset() && os.cpus().length > LOAD_CPU ? LOAD_CPU : null;
  const h0 = process.hrtime.bigint();
  const cpu0 = t.cpuMs();
  const res = await autocannon({ url: t.url, body: t.body, headers: t.headers, connections: CONNECTIONS, durationSec, cpu });
  const r: Measured = { ...res, cpuPerRequest: (t.cpuMs() - cpu0) / Math.max(1, res.total) };
  if (measured && t.haul) recordWindow(opts.profileDir, t.haul.pid, `read path: ${t.label}`, h0, process.hrtime.bigint());
  if (r.non2xx || r.errors || r.timeouts) {
    throw new Error(`${t.label}: ${r.non2xx} non-2xx responses, ${r.errors} errors, ${r.timeouts} timeouts out of ${r.total}`);
  }
  if (measured) {
    opts.log(
      `${t.label}: ${r.rps.toFixed(0)} req/s, latency p50 ${r.p50} ms, p99 ${r.p99} ms (${r.total} requests in ${r.duration.toFixed(1)} s; ` +
        `server CPU ${r.cpuPerRequest.toFixed(3)} ms/request)`,
    );
  }
  return r;
}

async function readPath(opts: BenchOptions): Promise<Row[]> {
  const durationSec = opts.full ? 15 : 5;
  // Every server is warmed up by request count, not by time: haul needs a few thousand requests
  // before its rate settles (JIT: ~2.4 ms of CPU per job(id) in the first second, ~0.8 ms after 5 s),
  // and on a loaded machine 3 s may be a few hundred requests. 1-second runs until the target is
  // reached (at most WARM_MAX_SEC), for the baselines as for haul.
  const WARM_MAX_SEC = opts.full ? 30 : 15;
  const warm = async (t: Target, requests: number) => {
    let done = 0;
    let runs = 0;
    const t0 = performance.now();
    while (done < requests && performance.now() - t0 < WARM_MAX_SEC * 1000) {
      done += (await load(opts, t, 1, false)).total;
      runs++;
    }
    opts.log(`${t.label}: warmed up with ${done} requests in ${runs} s`);
  };
  const pairs = opts.full ? 2 : 1;
  const pinned = hasTaskset() && os.cpus().length > 1;
  ensureFreshHaulBuild(opts.log); // the haul child runs dist/main.js: rebuilt when src/ is newer
  if (!pinned) opts.log("taskset missing or a single CPU: servers and autocannon are not pinned");

  const db = await createDatabase();
  const scratch = tempDir("readpath");
  const stopServers: (() => Promise<void>)[] = [];
  try {
    const h = await startHaul({ databaseUrl: db.url, profileDir: opts.profileDir });
    stopServers.push(h.stop);
    if (pinned && !pinProcess(h.pid, SERVER_CPU)) opts.log(`could not pin haul pid ${h.pid} to CPU ${SERVER_CPU}`);

    // A USER token, and its 60 jobs of 3 files each (suspended: nothing transfers), via the API.
    const { createApiToken } = await h.gql<{ createApiToken: { token: string } }>(
      `mutation { createApiToken(input: { user: "bench", role: USER, description: "read-path bench" }) { token } }`,
    );
    const userToken = createApiToken.token;
    const asUser = <T>(q: string, v?: Record<string, unknown>) => gql<T>(h.graphqlUrl, q, v, userToken);
    const ids = await mapPool(
      Array.from({ length: 60 }, (_, i) => i),
      8,
      async (i) =>
        (
          await asUser<{ createJob: { job: { id: string } } }>(`mutation($input: CreateJobInput!) { createJob(input: $input) { job { id } } }`, {
            input: {
              displayName: `read-path job ${i}`,
              description: "a job of the read-path benchmark",
              files: [0, 1, 2].map((f) => ({ remoteUrl: `http://127.0.0.1:9/read-path/${i}/file-${f}.bin`, localPath: `read-path/${i}/file-${f}.bin` })),
            },
          })
        ).createJob.job.id,
    );
    const jobId = ids[17]!;

    const auth = { authorization: `Bearer ${userToken}` };
    const haulJob: Target = { label: "haul job(id)", url: h.graphqlUrl, body: JSON.stringify({ query: JOB_QUERY, variables: { id: jobId } }), headers: auth, haul: h, cpuMs: h.cpuMs };
    const haulPage: Target = { label: "haul jobs(first: 50) x 3 files", url: h.graphqlUrl, body: JSON.stringify({ query: PAGE_QUERY }), headers: auth, haul: h, cpuMs: h.cpuMs };
    await check(haulJob, (d) => d.job?.id === jobId);
    const pageText = await check(haulPage, (d) => d.jobs?.edges?.length === 50 && d.jobs.edges.every((e: any) => e.node.files.edges.length === 3));

    // The bare yoga serves haul's own page from memory.
    const pageFile = path.join(scratch.dir, "page.json");
    fs.writeFileSync(pageFile, JSON.stringify((JSON.parse(pageText) as { data: { jobs: unknown } }).data.jobs));
    const bare = await startScriptServer("bench/bare-yoga.ts", [pageFile], { cpu: pinned ? SERVER_CPU : null });
    const bareHello: Target = { label: "bare yoga { hello }", url: bare.url, body: JSON.stringify({ query: HELLO_QUERY }), headers: auth, haul: null, cpuMs: bare.cpuMs };
    const barePage: Target = { label: "bare yoga jobs page from memory", url: bare.url, body: JSON.stringify({ query: PAGE_QUERY }), headers: auth, haul: null, cpuMs: bare.cpuMs };
    stopServers.push(bare.stop);
    await check(bareHello, (d) => d.hello === "world");
    const barePageText = await check(barePage, (d) => d.jobs?.edges?.length === 50);
    if (barePageText !== pageText) throw new Error("the bare yoga's page differs from haul's");
    opts.log(
      `haul pid ${h.pid}, bare yoga pid ${bare.pid}${pinned ? `, both on CPU ${SERVER_CPU}; autocannon on CPU ${LOAD_CPU}` : ""}; ` +
        `${CONNECTIONS} connections, ${durationSec} s per run; page response ${pageText.length} bytes`,
    );

    for (const [t, n] of [
      [bareHello, 3000],
      [haulJob, 3000],
      [barePage, 600],
      [haulPage, 600],
    ] as const) {
      await warm(t, n);
    }

    const compare = async (base: Target, haul: Target) => {
      const b: Measured[] = [];
      const x: Measured[] = [];
      for (let i = 0; i < pairs; i++) {
        b.push(await load(opts, base, durationSec, true));
        x.push(await load(opts, haul, durationSec, true));
      }
      return { b, x };
    };
    const one = await compare(bareHello, haulJob);
    const page = await compare(barePage, haulPage);
    for (const stop of stopServers) await stop();

    // Diagnostic: SQL statements per request, counted by a proxy in front of Postgres, with a second
    // haul child on the same database (untimed: the proxy adds a hop).
    let perRequest = { job: "", page: "" };
    if (!process.env.BENCH_PG_SOCKET?.trim()) {
      const counter = await startStatementCounter(db.url);
      const d = await startHaul({ databaseUrl: counter.url });
      const post = (t: Target) =>
        fetch(d.graphqlUrl, { method: "POST", headers: { "content-type": "application/json", ...t.headers }, body: t.body }).then((r) => r.text());
      const countFor = async (t: Target, k: number) => {
        await post(t); // caches warm (the token)
        counter.reset();
        const t0 = performance.now();
        for (let i = 0; i < k; i++) await post(t);
        const elapsed = performance.now() - t0;
        const c = counter.counts();
        // What haul runs by itself meanwhile (the event feed's poll, the worker's): as long again, idle.
        counter.reset();
        await sleep(elapsed);
        const idle = counter.counts();
        const own = [...c.byText.entries()]
          .map(([q, n]) => [q, n - (idle.byText.get(q) ?? 0)] as const)
          .filter(([, n]) => n >= k / 20) // background noise left out
          .sort((a, b) => b[1] - a[1]);
        const top = own.slice(0, 3);
        const per = own.reduce((sum, [, n]) => sum + n, 0) / k;
        opts.log(
          `${t.label}: ${per.toFixed(2)} SQL statements per request (${c.statements} in ${k} requests, less what haul's background ` +
            `loops ran in as long idle: ${idle.statements}): ${top.map(([q, n]) => `${(n / k).toFixed(2)} x ${q.slice(0, 100)}`).join(" | ")}`,
        );
        return `${per.toFixed(1)} SQL statement(s) per request (counted by a proxy in front of Postgres, untimed)`;
      };
      perRequest = { job: await countFor(haulJob, 300), page: await countFor(haulPage, 60) };
      await d.stop();
      await counter.close();
    }

    const fmt = (rs: Measured[]) => {
      const rps = median(rs.map((r) => r.rps));
      return { rps, text: `${rps.toFixed(0)} req/s, p50 ${median(rs.map((r) => r.p50))} ms, p99 ${median(rs.map((r) => r.p99))} ms` };
    };
    const row = (scenario: string, baseName: string, c: { b: Measured[]; x: Measured[] }, note: string): Row => {
      const b = fmt(c.b);
      const x = fmt(c.x);
      const ratio = x.rps / b.rps;
      return {
        scenario,
        baseline: `${baseName} ${b.text}`,
        haul: `haul ${x.text}`,
        ratio,
        target: ">= 0.50x",
        pass: ratio >= 0.5,
        note:
          `autocannon -c ${CONNECTIONS} -d ${durationSec}, POST, keep-alive; ${pinned ? `server on CPU ${SERVER_CPU}, autocannon on CPU ${LOAD_CPU} (Postgres unpinned)` : "unpinned"}; ` +
          `${c.b.length > 1 ? `median of ${c.b.length} interleaved runs each; ` : ""}server CPU per request (all threads): ` +
          `baseline ${median(c.b.map((r) => r.cpuPerRequest)).toFixed(3)} ms, haul ${median(c.x.map((r) => r.cpuPerRequest)).toFixed(3)} ms; ${note}`,
      };
    };
    return [
      row("read: job(id)", "bare yoga { hello }", one, `haul: a USER token (authentication cached), the job one of its 60; fields id displayName state progress{bytesTransferred filesTransferred}; ${perRequest.job}`),
      row(
        "read: page of 50 jobs x 3 files",
        "bare yoga from memory",
        page,
        `jobs(first: 50){edges{node{id displayName state progress{bytesTransferred} files{edges{node{id localPath bytesTransferred}}}}}}, USER token, 60 jobs in Postgres; the bare yoga answers the same ${pageText.length} bytes from memory; ${perRequest.page}`,
      ),
    ];
  } finally {
    for (const stop of stopServers) await stop();
    await db.drop();
    await scratch.remove();
  }
}

export const scenarios: Scenario[] = [{ name: "read path: job(id) and a page of 50 jobs vs bare yoga", run: readPath }];
