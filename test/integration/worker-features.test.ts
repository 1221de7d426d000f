// The transfer worker's features end to end, against real loopback origins with faults: stalls,
// Retry-After, short bodies, redirects (chains, the limit, leaving the origin with credentials),
// write-only headers and credentials, the no-progress and maximum-download-time clocks, the
// inactivity sweep, the jobProgress subscription, bandwidth limits (per job, global, changed
// mid-transfer), servers refusing HEAD, and a 416 on resume after the file shrank.
// Exact end states, codes and side effects (origin request logs, the job_event table, files on
// disk). Every wait has a deadline; servers and origins are closed in `after`.
import { test, before, after, type TestContext } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { createHash, randomUUID } from "node:crypto";
import { startServer, ok, gql } from "../helpers/server.js";
import { startOrigin, type Origin, type RequestLog } from "../helpers/origin.js";
import { act, createJob, jobStatus, uuidOf, waitFor, waitForState } from "../helpers/jobs.js";
import { connectWs, type WsClient } from "../helpers/subscribe.js";

type Server = Awaited<ReturnType<typeof startServer>>;

let s: Server;
let o: Origin;
let o2: Origin;
let url: string;
const extraServers = new Set<Server>();
const wsClients = new Set<WsClient>();

before(async () => {
  s = await startServer({ worker: true, retryDelayFloorSeconds: 0 });
  url = s.graphqlUrl;
  o = await startOrigin();
  o2 = await startOrigin();
});

after(async () => {
  for (const ws of wsClients) await ws.dispose().catch(() => {});
  for (const x of extraServers) await x.close().catch(() => {});
  await s?.close();
  await o?.close();
  await o2?.close();
});

// ---- helpers -------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function sha(buf: Buffer): string {
  return createHash("sha256").update(buf).digest("hex");
}

/** Polls `cond` until it holds; throws naming `label` after `ms`. */
async function until(cond: () => boolean | Promise<boolean>, label: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${label}`);
    await sleep(25);
  }
}

async function startExtraServer(opts: Parameters<typeof startServer>[0]): Promise<Server> {
  const x = await startServer(opts);
  extraServers.add(x);
  return x;
}

async function closeExtraServer(x: Server): Promise<void> {
  extraServers.delete(x);
  await x.close();
}

async function openWs(server: Server): Promise<WsClient> {
  const ws = await connectWs(server.wsUrl);
  wsClients.add(ws);
  return ws;
}

async function closeWs(ws: WsClient): Promise<void> {
  wsClients.delete(ws);
  await ws.dispose();
}

/** Every job_event row of a job, in commit order. */
function eventsOf(server: Server, id: string) {
  return server.db.prisma.jobEvent.findMany({ where: { jobId: uuidOf(id) }, orderBy: { seq: "asc" } });
}

type EventRow = Awaited<ReturnType<typeof eventsOf>>[number];

/** The state transitions (creation included), in order. */
function transitions(evs: EventRow[]): EventRow[] {
  return evs.filter((e) => e.kind === "CREATED" || e.kind === "STATE_CHANGED");
}

/** ms since the epoch of the first (or last) transition into `state`. */
function atOf(evs: EventRow[], state: string, which: "first" | "last" = "first"): number {
  const t = transitions(evs).filter((e) => e.state === state);
  const e = which === "first" ? t[0] : t.at(-1);
  assert.ok(e, `no transition into ${state}: ${transitions(evs).map((x) => x.state).join(" -> ")}`);
  return e.at.getTime();
}

function gets(reqs: RequestLog[]): RequestLog[] {
  return reqs.filter((r) => r.method === "GET");
}

/** Completes a TRANSFERRED job and returns the content of its (first) file on disk. */
async function completeAndRead(server: Server, id: string, localPath: string): Promise<Buffer> {
  const r = await act(server.graphqlUrl, "completeJob", id);
  assert.equal(r.data?.completeJob?.job?.state, "ACKNOWLEDGED", JSON.stringify(r));
  assert.deepEqual(r.data.completeJob.warnings, []);
  return fs.readFileSync(path.join(server.storageRoot, "local", localPath));
}

function tempFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true }).map(String).filter((f) => f.includes(".haul-part"));
}

function report(t: TestContext, line: string): void {
  t.diagnostic(line);
  console.log(`# [figure] ${line}`);
}

const FILE_FIELDS = `id remoteUrl localPath position bytesTotal bytesTransferred transferred completed sha256`;

// ---- 1. stall ----------------------------------------------------------------------------------------

test("a stall mid-body is TRANSIENT_ERROR STALLED (GENERAL_TRANSPORT); the retry resumes from the offset and finishes", async () => {
  const p = "/stall/a.bin";
  o.add({ path: p, size: 1_000_000 });
  o.fault(p, { type: "stall", afterBytes: 300_000, times: 1 });
  const id = await createJob(url, [{ remoteUrl: o.urlFor(p), localPath: "stall/a.bin", sha256: o.sha256Of(p) }], { minimumRetryDelay: 2 });
  await act(url, "resumeJob", id);

  const t = await waitForState(url, id, ["TRANSIENT_ERROR", "ERROR", "TRANSFERRED"], 15_000);
  assert.equal(t.state, "TRANSIENT_ERROR", JSON.stringify(t));
  assert.equal(t.error.code, "STALLED");
  assert.equal(t.error.context, "GENERAL_TRANSPORT");
  assert.equal(t.error.httpStatus, null);
  assert.equal(t.error.file.localPath, "stall/a.bin");
  assert.equal(t.errorCount, 1);
  assert.equal(t.progress.bytesTransferred, "300000", "the bytes received before the stall are kept");
  assert.equal(t.progress.bytesTotal, "1000000");

  // Detected after stallSeconds (2 s in TEST_WORKER) of silence, not before.
  const first = o.requests(p)[0]!;
  const stalledAt = atOf(await eventsOf(s, id), "TRANSIENT_ERROR");
  assert.ok(stalledAt - first.at >= 1_900, `stall detected after ${stalledAt - first.at} ms (< 2 s)`);
  assert.ok(stalledAt - first.at <= 5_000, `stall detected after ${stalledAt - first.at} ms (> 5 s)`);

  const done = await waitForState(url, id, ["TRANSFERRED", "ERROR"], 20_000);
  assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
  assert.equal(done.errorCount, 1);
  assert.equal(done.error, null);
  assert.deepEqual(done.progress, { bytesTotal: "1000000", bytesTransferred: "1000000", filesTotal: 1, filesTransferred: 1 });

  const reqs = gets(o.requests(p));
  assert.equal(reqs.length, 2, JSON.stringify(reqs.map((r) => [r.range, r.status])));
  assert.equal(reqs[0]!.range, null);
  assert.equal(reqs[1]!.range, "bytes=300000-", "resumed exactly at the persisted offset");
  assert.match(reqs[1]!.ifRange ?? "", /^"/, "If-Range carries the strong ETag");
  assert.equal(reqs[1]!.status, 206);
  assert.equal(reqs[1]!.bytesSent, 700_000, "only the missing bytes were fetched again");

  assert.equal(sha(await completeAndRead(s, id, "stall/a.bin")), o.sha256Of(p));
});

// ---- 2. Retry-After / minimumRetryDelay --------------------------------------------------------------

test("429 with Retry-After: 3 on a job with minimumRetryDelay 1: retried after 3 s, not 1", async () => {
  const p = "/ra/429.bin";
  o.add({ path: p, size: 100_000 });
  o.fault(p, { type: "status", status: 429, times: 1, headers: { "Retry-After": "3" } });
  const id = await createJob(url, [{ remoteUrl: o.urlFor(p), localPath: "ra/429.bin", sha256: o.sha256Of(p) }], { minimumRetryDelay: 1 });
  await act(url, "resumeJob", id);

  const t = await waitForState(url, id, ["TRANSIENT_ERROR", "ERROR", "TRANSFERRED"], 10_000);
  const seen = Date.now();
  assert.equal(t.state, "TRANSIENT_ERROR", JSON.stringify(t));
  assert.equal(t.error.code, "HTTP_429");
  assert.equal(t.error.context, "REMOTE_FILE");
  assert.equal(t.error.httpStatus, 429);
  assert.equal(t.errorCount, 1);
  assert.ok(t.retryAt, "retryAt is set");
  const retryAt = Date.parse(t.retryAt);
  const failedAt = atOf(await eventsOf(s, id), "TRANSIENT_ERROR");
  assert.equal(retryAt - failedAt, 3_000, "retryAt = failure time + max(minimumRetryDelay 1, Retry-After 3)");
  // Only an upper bound against the observer's clock: a loaded machine may observe the state late.
  assert.ok(retryAt - seen <= 3_100, `retryAt is ${retryAt - seen} ms from now, expected at most 3 s`);

  const done = await waitForState(url, id, ["TRANSFERRED", "ERROR"], 15_000);
  assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
  assert.equal(done.errorCount, 1);
  assert.equal(done.error, null);
  const reqs = gets(o.requests(p));
  assert.equal(reqs.length, 2);
  const gap = reqs[1]!.at - reqs[0]!.at;
  assert.ok(gap >= 2_950, `the retry came ${gap} ms after the 429 (Retry-After: 3)`);
  assert.ok(reqs[1]!.at - retryAt <= 2_000, `the retry came ${reqs[1]!.at - retryAt} ms after retryAt`);
  assert.equal(sha(await completeAndRead(s, id, "ra/429.bin")), o.sha256Of(p));
});

test("503 without Retry-After on a job with minimumRetryDelay 2: retryAt is failure time + 2 s", async () => {
  const p = "/ra/503.bin";
  o.add({ path: p, size: 100_000 });
  o.fault(p, { type: "status", status: 503, times: 1 });
  const id = await createJob(url, [{ remoteUrl: o.urlFor(p), localPath: "ra/503.bin" }], { minimumRetryDelay: 2 });
  await act(url, "resumeJob", id);

  const t = await waitForState(url, id, ["TRANSIENT_ERROR", "ERROR", "TRANSFERRED"], 10_000);
  const seen = Date.now();
  assert.equal(t.state, "TRANSIENT_ERROR", JSON.stringify(t));
  assert.equal(t.error.code, "HTTP_503");
  assert.equal(t.error.httpStatus, 503);
  assert.equal(t.errorCount, 1);
  const retryAt = Date.parse(t.retryAt);
  const failedAt = atOf(await eventsOf(s, id), "TRANSIENT_ERROR");
  assert.equal(retryAt - failedAt, 2_000);
  assert.ok(retryAt - seen <= 2_100, `retryAt is ${retryAt - seen} ms from now, expected at most 2 s`);

  const done = await waitForState(url, id, ["TRANSFERRED", "ERROR"], 15_000);
  assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
  assert.equal(done.errorCount, 1);
  const reqs = gets(o.requests(p));
  assert.equal(reqs.length, 2);
  assert.ok(reqs[1]!.at - reqs[0]!.at >= 1_950, `retried ${reqs[1]!.at - reqs[0]!.at} ms after the 503`);
});

// ---- 3. short body -----------------------------------------------------------------------------------

test("a short body (clean close before Content-Length) is TRANSIENT_ERROR SHORT_BODY; the resume completes with the right sha256", async (t0) => {
  const p = "/short/a.bin";
  o.add({ path: p, size: 1_000_000 });
  o.fault(p, { type: "shortBody", bytes: 400_000, times: 1 });
  const id = await createJob(url, [{ remoteUrl: o.urlFor(p), localPath: "short/a.bin", sha256: o.sha256Of(p) }], { minimumRetryDelay: 2 });
  await act(url, "resumeJob", id);

  const t = await waitForState(url, id, ["TRANSIENT_ERROR", "ERROR", "TRANSFERRED"], 10_000);
  assert.equal(t.state, "TRANSIENT_ERROR", JSON.stringify(t));
  assert.equal(t.errorCount, 1);
  // What was persisted is on disk and is where the resume starts (bytes still buffered in the response
  // stream when the connection closed may be dropped and fetched again).
  const offset = Number(t.progress.bytesTransferred);
  assert.ok(offset > 0 && offset <= 400_000, `persisted offset ${offset}`);
  report(t0, `short body after 400000 bytes: persisted offset ${offset}, code ${t.error.code} (${t.error.message})`);
  const code = t.error.code;
  const context = t.error.context;

  const done = await waitForState(url, id, ["TRANSFERRED", "ERROR"], 15_000);
  assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
  assert.equal(done.errorCount, 1);
  const reqs = gets(o.requests(p));
  assert.equal(reqs.length, 2);
  assert.equal(reqs[1]!.range, `bytes=${offset}-`);
  assert.equal(reqs[1]!.status, 206);
  assert.equal(sha(await completeAndRead(s, id, "short/a.bin")), o.sha256Of(p));

  // Checked last so that a wrong code does not hide whether the resume itself works.
  assert.equal(code, "SHORT_BODY", `a clean close after 400000 of 1000000 announced bytes must be SHORT_BODY, got ${code}: ${t.error.message}`);
  assert.equal(context, "GENERAL_TRANSPORT");
});

// ---- 4. redirects ----------------------------------------------------------------------------------

test("a chain of 3 redirects (302, 301, 307 absolute) downloads the right content; the file keeps its remoteUrl", async () => {
  const target = "/redir/file.bin";
  o.add({ path: target, size: 300_000 });
  o.fault("/redir/1", { type: "redirect", to: "/redir/2" });
  o.fault("/redir/2", { type: "redirect", to: "/redir/3", status: 301 });
  o.fault("/redir/3", { type: "redirect", to: o.urlFor(target), status: 307 });
  const id = await createJob(url, [{ remoteUrl: o.urlFor("/redir/1"), localPath: "redir/a.bin", sha256: o.sha256Of(target) }]);
  await act(url, "resumeJob", id);
  const done = await waitForState(url, id, ["TRANSFERRED", "ERROR", "TRANSIENT_ERROR"], 10_000);
  assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
  assert.equal(done.errorCount, 0);

  const files = (await ok(url, `query($id: ID!) { job(id: $id) { files { edges { node { ${FILE_FIELDS} } } } } }`, { id })).job.files.edges;
  assert.equal(files.length, 1);
  const f = files[0].node;
  assert.equal(f.remoteUrl, o.urlFor("/redir/1"), "remoteUrl is what the client asked for");
  assert.equal(f.bytesTotal, "300000");
  assert.equal(f.bytesTransferred, "300000");
  assert.equal(f.transferred, true);
  assert.equal(f.completed, false);
  const row = await s.db.prisma.file.findFirstOrThrow({ where: { jobId: uuidOf(id) } });
  assert.equal(row.finalUrl, o.urlFor(target), "the URL actually fetched is recorded");

  for (const hop of ["/redir/1", "/redir/2", "/redir/3", target]) {
    assert.equal(o.requests(hop).length, 1, `${hop} asked once`);
  }
  assert.deepEqual(
    ["/redir/1", "/redir/2", "/redir/3"].map((h) => o.requests(h)[0]!.status),
    [302, 301, 307],
  );
  assert.equal(sha(await completeAndRead(s, id, "redir/a.bin")), o.sha256Of(target));
  const completed = (await ok(url, `query($id: ID!) { job(id: $id) { files { edges { node { completed } } } } }`, { id })).job.files.edges;
  assert.equal(completed[0].node.completed, true);
});

/** /<prefix>/0 -> /<prefix>/1 -> ... -> /<prefix>/<n> (the file): n redirects. */
function redirectChain(prefix: string, n: number): { start: string; target: string } {
  const target = `/${prefix}/${n}`;
  o.add({ path: target, size: 50_000 });
  for (let i = 0; i < n; i++) o.fault(`/${prefix}/${i}`, { type: "redirect", to: `/${prefix}/${i + 1}` });
  return { start: `/${prefix}/0`, target };
}

test("10 redirects are followed (the limit); 11 are ERROR TOO_MANY_REDIRECTS", async () => {
  const ten = redirectChain("ten", 10);
  const okId = await createJob(url, [{ remoteUrl: o.urlFor(ten.start), localPath: "redir/ten.bin", sha256: o.sha256Of(ten.target) }]);
  await act(url, "resumeJob", okId);
  const okDone = await waitForState(url, okId, ["TRANSFERRED", "ERROR", "TRANSIENT_ERROR"], 10_000);
  assert.equal(okDone.state, "TRANSFERRED", `10 redirects must work: ${JSON.stringify(okDone)}`);

  const eleven = redirectChain("eleven", 11);
  const id = await createJob(url, [{ remoteUrl: o.urlFor(eleven.start), localPath: "redir/eleven.bin" }], { minimumRetryDelay: 1 });
  await act(url, "resumeJob", id);
  const st = await waitForState(url, id, ["ERROR", "TRANSIENT_ERROR", "TRANSFERRED"], 10_000);
  assert.equal(st.state, "ERROR", JSON.stringify(st));
  assert.equal(st.error.code, "TOO_MANY_REDIRECTS");
  assert.equal(st.error.context, "REMOTE_FILE");
  assert.equal(st.error.file.localPath, "redir/eleven.bin");
  assert.equal(st.errorCount, 1);
  assert.equal(st.retryAt, null);
  for (let i = 0; i < 11; i++) assert.equal(o.requests(`/eleven/${i}`).length, 1, `hop ${i} asked once`);
  assert.equal(o.requests(eleven.target).length, 0, "the 11th redirect is not followed");
});

test("a redirect to another origin drops Authorization; the first origin (and same-origin hops) got Basic credentials", async () => {
  const target = "/x/file.bin";
  o2.add({ path: target, size: 200_000 });
  o.fault("/x/start", { type: "redirect", to: "/x/hop" });
  o.fault("/x/hop", { type: "redirect", to: o2.urlFor(target) });
  const creds = { username: "alice", password: `pw-${randomUUID()}` };
  const id = await createJob(url, [{ remoteUrl: o.urlFor("/x/start"), localPath: "x/file.bin", sha256: o2.sha256Of(target) }], {
    credentials: creds,
    httpHeaders: [{ name: "X-Trace", value: "trace-1" }],
  });
  await act(url, "resumeJob", id);
  const done = await waitForState(url, id, ["TRANSFERRED", "ERROR", "TRANSIENT_ERROR"], 10_000);
  assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));

  const basic = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`;
  assert.equal(o.requests("/x/start")[0]!.headers.authorization, basic, "the first origin got the credentials");
  assert.equal(o.requests("/x/hop")[0]!.headers.authorization, basic, "a same-origin hop keeps them");
  const foreign = o2.requests(target);
  assert.equal(foreign.length, 1);
  assert.equal(foreign[0]!.headers.authorization, undefined, "the other origin never sees the credentials");
  for (const r of o2.requests()) {
    assert.ok(!JSON.stringify(r.headers).includes(creds.password), "no trace of the password on the other origin");
    assert.ok(!JSON.stringify(r.headers).includes(Buffer.from(`${creds.username}:${creds.password}`).toString("base64")));
  }
  assert.equal(sha(await completeAndRead(s, id, "x/file.bin")), o2.sha256Of(target));
});

// ---- 5. write-only headers and credentials -----------------------------------------------------------

let schemaTypes: Map<string, any> | null = null;

/** A selection set of every field of `typeName` (fields without required arguments), `depth` objects deep. */
async function fullSelection(typeName: string, depth: number): Promise<string> {
  if (!schemaTypes) {
    const typeRef = "kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";
    const r = await ok(url, `{ __schema { types { name kind fields { name args { type { kind } } type { ${typeRef} } } } } }`);
    schemaTypes = new Map(r.__schema.types.map((t: any) => [t.name, t]));
  }
  const named = (t: any): string => (t.ofType ? named(t.ofType) : t.name);
  const sel = (name: string, d: number): string | null => {
    const t = schemaTypes!.get(name);
    if (!t?.fields) return null;
    const parts: string[] = [];
    for (const f of t.fields) {
      if (f.args.some((a: any) => a.type.kind === "NON_NULL")) continue;
      const nt = schemaTypes!.get(named(f.type));
      if (nt.kind === "SCALAR" || nt.kind === "ENUM") parts.push(f.name);
      else if (nt.kind === "OBJECT") {
        if (d > 0) {
          const inner = sel(nt.name, d - 1);
          if (inner) parts.push(`${f.name} ${inner}`);
        }
      } else parts.push(`${f.name} { __typename }`);
    }
    return parts.length ? `{ ${parts.join(" ")} }` : null;
  };
  return sel(typeName, depth)!;
}

function assertNoSecrets(where: string, value: unknown, secrets: string[]): void {
  const text = JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
  for (const secret of secrets) {
    assert.ok(!text.includes(secret), `${where} contains the secret ${JSON.stringify(secret)}: ${text.slice(0, 3000)}`);
  }
}

test("custom headers and credentials: sent on every request, never returned (API, subscription, job_event); clearCredentials works", async () => {
  const user = `user-${randomUUID().slice(0, 8)}`;
  const password = `pw-${randomUUID()}`;
  const header1 = `key-${randomUUID()}`;
  const header2 = `tok-${randomUUID()}`;
  const basicB64 = Buffer.from(`${user}:${password}`).toString("base64");
  const secrets = [user, password, header1, header2, basicB64];
  const headerNames = ["X-Api-Key", "X-Custom-Token"];

  const p = "/sec/a.bin";
  o.add({ path: p, size: 600_000 });
  o.fault(p, { type: "reset", afterBytes: 200_000, times: 1 }); // so there are two requests
  const JOB = await fullSelection("Job", 4);

  const created = await gql(url, `mutation($input: CreateJobInput!) { createJob(input: $input) { job ${JOB} warnings } }`, {
    input: {
      displayName: "secret job",
      minimumRetryDelay: 1,
      httpHeaders: [
        { name: headerNames[0], value: header1 },
        { name: headerNames[1], value: header2 },
      ],
      credentials: { username: user, password },
      files: [{ remoteUrl: o.urlFor(p), localPath: "sec/a.bin", sha256: o.sha256Of(p) }],
    },
  });
  assert.equal(created.errors, undefined, JSON.stringify(created.errors));
  assertNoSecrets("the createJob payload", created, secrets);
  const id = created.data.createJob.job.id as string;
  assert.equal(created.data.createJob.job.hasCredentials, true);
  assert.deepEqual(created.data.createJob.job.httpHeaderNames, headerNames);

  // Every state transition, replayed from the start and then live, with the whole job in each.
  const ws = await openWs(s);
  const sub = ws.subscribe(
    `subscription($jobId: ID!) { jobStateChanged(jobId: $jobId, after: "0") { cursor kind previousState state at actor error { code message } job ${JOB} } }`,
    { jobId: id },
  );

  await act(url, "resumeJob", id);
  const done = await waitForState(url, id, ["TRANSFERRED", "ERROR"], 15_000);
  assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
  assert.equal(done.errorCount, 1, "the reset made a second request");

  // The origin got the headers and the credentials on every request.
  const reqs = o.requests(p);
  assert.equal(reqs.length, 2);
  for (const r of reqs) {
    assert.equal(r.headers["x-api-key"], header1);
    assert.equal(r.headers["x-custom-token"], header2);
    assert.equal(r.headers.authorization, `Basic ${basicB64}`);
  }

  // The API: every Job field, by id, in the list and as a node.
  const one = await gql(url, `query($id: ID!) { job(id: $id) ${JOB} }`, { id });
  assert.equal(one.errors, undefined, JSON.stringify(one.errors));
  assertNoSecrets("job(id)", one, secrets);
  assert.equal(one.data.job.hasCredentials, true);
  assert.deepEqual(one.data.job.httpHeaderNames, headerNames, "names only, in order");
  const list = await gql(url, `{ jobs(first: 200) { edges { node ${JOB} } } }`);
  assert.equal(list.errors, undefined, JSON.stringify(list.errors));
  assert.ok(list.data.jobs.edges.some((e: any) => e.node.id === id));
  assertNoSecrets("jobs", list, secrets);
  const node = await gql(url, `query($id: ID!) { node(id: $id) { ... on Job ${JOB} } }`, { id });
  assert.equal(node.errors, undefined, JSON.stringify(node.errors));
  assert.equal(node.data.node.id, id);
  assertNoSecrets("node(id)", node, secrets);

  await sub.events.until((c) => c.data.some((d: any) => d.jobStateChanged.state === "TRANSFERRED"), "TRANSFERRED on jobStateChanged");
  assert.deepEqual(sub.events.graphqlErrors, []);
  assert.ok(sub.events.data.length >= 6, `transitions received: ${sub.events.data.length}`);
  for (const d of sub.events.data as any[]) {
    assert.equal(d.jobStateChanged.job.hasCredentials, true);
    assert.deepEqual(d.jobStateChanged.job.httpHeaderNames, headerNames);
  }
  assertNoSecrets("the jobStateChanged payloads", sub.events.payloads, secrets);
  sub.unsubscribe();
  await closeWs(ws);

  // The log: not in any column of any event of this job (data included).
  const evs = await eventsOf(s, id);
  assert.ok(evs.length >= 6);
  assertNoSecrets("the job_event rows", evs, secrets);

  // clearCredentials: gone from the API, the row and the next requests; the headers stay.
  const cleared = await gql(url, `mutation($id: ID!) { updateJob(id: $id, input: { clearCredentials: true }) { job ${JOB} } }`, { id });
  assert.equal(cleared.errors, undefined, JSON.stringify(cleared.errors));
  assert.equal(cleared.data.updateJob.job.hasCredentials, false);
  assert.deepEqual(cleared.data.updateJob.job.httpHeaderNames, headerNames);
  assertNoSecrets("the updateJob payload", cleared, secrets);
  const row = await s.db.prisma.job.findUniqueOrThrow({ where: { id: uuidOf(id) } });
  assert.equal(row.httpCredentials, null);
  assert.ok(Array.isArray(row.httpHeaders) && row.httpHeaders.length === 2);

  const p2 = "/sec/b.bin";
  o.add({ path: p2, size: 50_000 });
  await ok(url, `mutation($id: ID!, $f: [FileInput!]!) { addFiles(jobId: $id, files: $f) { job { id } } }`, {
    id,
    f: [{ remoteUrl: o.urlFor(p2), localPath: "sec/b.bin" }],
  });
  await act(url, "resumeJob", id);
  await waitFor(url, id, (j) => j.state === "TRANSFERRED" && j.progress.filesTransferred === 2, "the added file transferred", 10_000);
  const later = o.requests(p2);
  assert.equal(later.length, 1);
  assert.equal(later[0]!.headers.authorization, undefined, "no credentials after clearCredentials");
  assert.equal(later[0]!.headers["x-api-key"], header1, "the custom headers are still sent");
  assert.equal(later[0]!.headers["x-custom-token"], header2);
  assert.equal(gets(o.requests(p)).length, 2, "the finished file is not fetched again");
  assertNoSecrets("the job_event rows after the update", await eventsOf(s, id), secrets);
});

// ---- 6. no-progress timeout --------------------------------------------------------------------------

test("noProgressTimeout 2 s with an origin that always answers 503: ERROR once the clock runs out, every attempt counted", async (t) => {
  const p = "/np/a.bin";
  o.add({ path: p, size: 10_000 });
  o.fault(p, { type: "status", status: 503 }); // forever
  const id = await createJob(url, [{ remoteUrl: o.urlFor(p), localPath: "np/a.bin" }], { minimumRetryDelay: 1, noProgressTimeout: 2 });
  await act(url, "resumeJob", id);

  const st = await waitForState(url, id, ["ERROR", "TRANSFERRED"], 15_000);
  assert.equal(st.state, "ERROR", JSON.stringify(st));
  assert.ok(st.errorCount >= 2, `errorCount ${st.errorCount}: the first failure starts the clock, a retry happens before it runs out`);
  assert.equal(st.retryAt, null);
  // Two paths lead here (job-state.ts [4] and [6]): the sweep finds the clock expired in TRANSIENT_ERROR
  // (NO_PROGRESS, quoting the last error), or a failed retry finds it already expired (the failure's
  // own code, straight to ERROR).
  if (st.error.code === "NO_PROGRESS") {
    assert.equal(st.error.context, "GENERAL_QUEUE_MANAGER");
    assert.equal(st.error.httpStatus, 503, "the last error's status is kept");
    assert.match(st.error.message, /503/, "quotes the last error");
  } else {
    assert.equal(st.error.code, "HTTP_503", `unexpected code ${st.error.code}`);
    assert.equal(st.error.context, "REMOTE_FILE");
  }

  const evs = await eventsOf(s, id);
  const states = transitions(evs).map((e) => e.state);
  const firstFailure = atOf(evs, "TRANSIENT_ERROR");
  const failed = atOf(evs, "ERROR");
  assert.ok(failed - firstFailure >= 1_990, `ERROR ${failed - firstFailure} ms after the first failure (< noProgressTimeout)`);
  // At most: a retry (<= ~2 s), then the next sweep (sweepSeconds 1; ticks are coalesced, so allow a late one).
  assert.ok(failed - firstFailure <= 5_000, `ERROR ${failed - firstFailure} ms after the first failure (too late)`);
  assert.equal(states.at(-1), "ERROR");
  assert.ok(!states.includes("TRANSFERRING"), states.join(" -> "));
  const attempts = gets(o.requests(p)).length;
  report(t, `noProgressTimeout 2 s: ERROR ${failed - firstFailure} ms after the first failure, code ${st.error.code}, errorCount ${st.errorCount}, attempts ${attempts}`);
  assert.equal(st.errorCount, attempts, `errorCount ${st.errorCount} != failed attempts ${attempts}`);

  // ERROR is never retried on its own.
  await sleep(1_500);
  assert.equal(gets(o.requests(p)).length, attempts, "no request after ERROR");
  assert.equal((await jobStatus(url, id)).state, "ERROR");
});

test("noProgressTimeout 0: the first transient error is fatal at once", async () => {
  const p = "/np0/a.bin";
  o.add({ path: p, size: 10_000 });
  o.fault(p, { type: "status", status: 503 });
  const id = await createJob(url, [{ remoteUrl: o.urlFor(p), localPath: "np0/a.bin" }], { minimumRetryDelay: 1, noProgressTimeout: 0 });
  await act(url, "resumeJob", id);
  const st = await waitForState(url, id, ["ERROR", "TRANSIENT_ERROR", "TRANSFERRED"], 10_000);
  assert.equal(st.state, "ERROR", JSON.stringify(st));
  assert.equal(st.error.code, "HTTP_503");
  assert.equal(st.error.context, "REMOTE_FILE");
  assert.equal(st.error.httpStatus, 503);
  assert.equal(st.errorCount, 1);
  assert.equal(st.retryAt, null);
  assert.deepEqual(
    transitions(await eventsOf(s, id)).map((e) => e.state),
    ["SUSPENDED", "QUEUED", "CONNECTING", "ERROR"],
    "never TRANSIENT_ERROR",
  );
  await sleep(1_500);
  assert.equal(gets(o.requests(p)).length, 1, "never retried");
});

test("a retry delay longer than noProgressTimeout: the first transient error is fatal at once", async () => {
  const p = "/np-delay/a.bin";
  o.add({ path: p, size: 10_000 });
  o.fault(p, { type: "status", status: 503 });
  const id = await createJob(url, [{ remoteUrl: o.urlFor(p), localPath: "np-delay/a.bin" }], { minimumRetryDelay: 5, noProgressTimeout: 3 });
  await act(url, "resumeJob", id);
  const st = await waitForState(url, id, ["ERROR", "TRANSIENT_ERROR", "TRANSFERRED"], 10_000);
  assert.equal(st.state, "ERROR", JSON.stringify(st));
  assert.equal(st.error.code, "HTTP_503");
  assert.equal(st.errorCount, 1);
});

// ---- 7. maximumDownloadTime --------------------------------------------------------------------------

test("maximumDownloadTime 2 s on a slow download: ERROR MAXDOWNLOAD_TIMEOUT at about 2 s (+ one sweep), and the transfer stops", async (t) => {
  const p = "/mdt/a.bin";
  o.add({ path: p, size: 1_000_000 });
  o.fault(p, { type: "rate", bytesPerSecond: 50_000 });
  const id = await createJob(url, [{ remoteUrl: o.urlFor(p), localPath: "mdt/a.bin" }], { maximumDownloadTime: 2, minimumRetryDelay: 1 });
  await act(url, "resumeJob", id);
  const st = await waitForState(url, id, ["ERROR", "TRANSIENT_ERROR", "TRANSFERRED"], 10_000);
  assert.equal(st.state, "ERROR", JSON.stringify(st));
  assert.equal(st.error.code, "MAXDOWNLOAD_TIMEOUT");
  assert.equal(st.error.context, "GENERAL_QUEUE_MANAGER");
  assert.equal(st.error.httpStatus, null);
  assert.equal(st.errorCount, 1);
  assert.equal(st.retryAt, null);

  const evs = await eventsOf(s, id);
  const started = atOf(evs, "CONNECTING");
  const failed = atOf(evs, "ERROR");
  report(t, `maximumDownloadTime 2 s: ERROR ${failed - started} ms after CONNECTING`);
  assert.ok(failed - started >= 1_990, `failed after ${failed - started} ms, before the 2 s`);
  // Checked at sweeps (every ~1 s; a coalesced tick can make one late): 2 s + one sweep + slack.
  assert.ok(failed - started <= 4_000, `failed after ${failed - started} ms, expected 2 s + about one 1 s sweep`);
  const states = transitions(evs).map((e) => e.state);
  assert.deepEqual(states, ["SUSPENDED", "QUEUED", "CONNECTING", "TRANSFERRING", "ERROR"]);

  // The partial bytes are kept (about 2 s at 50 KB/s), and nothing more is fetched.
  const moved = Number((await jobStatus(url, id)).progress.bytesTransferred);
  assert.ok(moved > 0 && moved < 250_000, `bytesTransferred ${moved}`);
  await sleep(300);
  const served = o.bytesServed(p);
  await sleep(1_000);
  assert.equal(o.bytesServed(p), served, "the origin stopped sending");
  assert.equal(gets(o.requests(p)).length, 1, "not retried");
  await act(url, "cancelJob", id);
});

// ---- 8. inactivity -----------------------------------------------------------------------------------

test("inactivity: a job untouched for longer than inactivitySeconds is CANCELLED by the sweep (actor null); others stay", async () => {
  const x = await startExtraServer({ worker: { inactivitySeconds: 60 }, retryDelayFloorSeconds: 0 });
  try {
    o.add({ path: "/idle/a.bin", size: 10_000 });
    const idle = await createJob(x.graphqlUrl, [{ remoteUrl: o.urlFor("/idle/a.bin"), localPath: "idle/a.bin" }]);
    const fresh = await createJob(x.graphqlUrl, [{ remoteUrl: o.urlFor("/idle/a.bin"), localPath: "idle/b.bin" }]);
    await x.db.prisma.job.update({ where: { id: uuidOf(idle) }, data: { modifiedAt: new Date(Date.now() - 120_000) } });

    const st = await waitForState(x.graphqlUrl, idle, ["CANCELLED"], 5_000);
    assert.equal(st.state, "CANCELLED");
    const last = transitions(await eventsOf(x, idle)).at(-1)!;
    assert.equal(last.kind, "STATE_CHANGED");
    assert.equal(last.state, "CANCELLED");
    assert.equal(last.previousState, "SUSPENDED");
    assert.equal(last.actor, null, "the service itself cancelled it");

    await sleep(1_500); // more than one sweep
    assert.equal((await jobStatus(x.graphqlUrl, fresh)).state, "SUSPENDED", "an active job is left alone");
    assert.equal(o.requests("/idle/a.bin").length, 0);
  } finally {
    await closeExtraServer(x);
  }
});

test("inactivity cancel deletes the job's temporary files (as cancelJob does)", async () => {
  const x = await startExtraServer({ worker: { inactivitySeconds: 60 }, retryDelayFloorSeconds: 0 });
  try {
    const p = "/idle/partial.bin";
    o.add({ path: p, size: 2_000_000 });
    o.fault(p, { type: "rate", bytesPerSecond: 400_000 });
    const id = await createJob(x.graphqlUrl, [{ remoteUrl: o.urlFor(p), localPath: "idle2/partial.bin" }]);
    await act(x.graphqlUrl, "resumeJob", id);
    await waitFor(x.graphqlUrl, id, (j) => Number(j.progress.bytesTransferred) >= 200_000, "bytes moving", 10_000);
    assert.equal((await act(x.graphqlUrl, "suspendJob", id)).data.suspendJob.job.state, "SUSPENDED");
    const dir = path.join(x.storageRoot, "local", "idle2");
    await until(() => tempFiles(dir).length === 1, "the partial temp file", 3_000);
    // Let the stopped transfer release its lease and settle before ageing the row.
    await sleep(500);
    await x.db.prisma.job.update({ where: { id: uuidOf(id) }, data: { modifiedAt: new Date(Date.now() - 120_000) } });
    await waitForState(x.graphqlUrl, id, ["CANCELLED"], 5_000);
    await until(() => tempFiles(dir).length === 0, `the temporary file to be deleted (still there: ${tempFiles(dir).join(", ")})`, 3_000);
  } finally {
    await closeExtraServer(x);
  }
});

// ---- 9. progress subscription --------------------------------------------------------------------

test("jobProgress over WebSocket: current figures first, then at most every ~500 ms, steady rate, exact totals at the end", async (t) => {
  const p = "/prog/a.bin";
  o.add({ path: p, size: 3_000_000 });
  o.fault(p, { type: "rate", bytesPerSecond: 1_000_000 });
  const id = await createJob(url, [{ remoteUrl: o.urlFor(p), localPath: "prog/a.bin", sha256: o.sha256Of(p) }]);
  const ws = await openWs(s);
  try {
    const sub = ws.subscribe(
      `subscription($jobId: ID!) { jobProgress(jobId: $jobId) { jobId state bytesTransferred bytesTotal filesTransferred filesTotal bytesPerSecond at } }`,
      { jobId: id },
    );
    await sub.events.untilData(1, "the current progress");
    const first = (sub.events.data[0] as any).jobProgress;
    assert.equal(first.jobId, id);
    assert.equal(first.state, "SUSPENDED");
    assert.equal(first.bytesTransferred, "0");
    assert.equal(first.filesTransferred, 0);
    assert.equal(first.filesTotal, 1);
    assert.equal(first.bytesPerSecond, 0);

    await act(url, "resumeJob", id);
    await sub.events.until(
      (c) => c.data.some((d: any) => d.jobProgress.bytesTransferred === "3000000") || c.graphqlErrors.length > 0,
      "the last progress update",
      15_000,
    );
    assert.deepEqual(sub.events.graphqlErrors, []);
    const done = await waitForState(url, id, ["TRANSFERRED", "ERROR"], 10_000);
    assert.equal(done.state, "TRANSFERRED");
    await sleep(300); // anything late would show up now
    sub.unsubscribe();

    const msgs = (sub.events.data as any[]).map((d) => d.jobProgress);
    const updates = msgs.slice(1);
    const line = updates.map((m) => `${m.bytesTransferred}@${Date.parse(m.at) % 100_000}ms:${Math.round(m.bytesPerSecond / 1000)}KB/s`).join(" ");
    report(t, `jobProgress updates: ${line}`);
    assert.ok(updates.length >= 5 && updates.length <= 9, `${updates.length} updates for a 3 s transfer at one per ~500 ms`);
    for (const m of msgs) assert.equal(m.jobId, id);

    let prev = -1;
    for (const m of msgs) {
      const b = Number(m.bytesTransferred);
      assert.ok(b >= prev, `bytesTransferred went back: ${prev} -> ${b}`);
      prev = b;
    }
    for (let i = 1; i < updates.length - 1; i++) {
      const gap = Date.parse(updates[i].at) - Date.parse(updates[i - 1].at);
      assert.ok(gap >= 400, `updates ${i - 1} and ${i} only ${gap} ms apart (${line})`);
    }
    for (const m of updates.slice(1, -1)) {
      assert.ok(m.bytesPerSecond >= 500_000 && m.bytesPerSecond <= 1_500_000, `rate ${m.bytesPerSecond} not within 50% of 1 MB/s (${line})`);
      assert.equal(m.bytesTotal, "3000000");
    }
    const last = updates.at(-1);
    assert.equal(last.bytesTransferred, "3000000");
    assert.equal(last.bytesTotal, "3000000");
    assert.equal(last.filesTransferred, 1);
  } finally {
    await closeWs(ws);
  }
});

// ---- 10. bandwidth -------------------------------------------------------------------------------------

test("per-job maxBytesPerSecond 500000: a 2.5 MB file takes 5 s ±15% (CONNECTED -> TRANSFERRED)", async (t) => {
  const p = "/bw/job.bin";
  o.add({ path: p, size: 2_500_000 });
  const id = await createJob(url, [{ remoteUrl: o.urlFor(p), localPath: "bw/job.bin", sha256: o.sha256Of(p) }], { maxBytesPerSecond: "500000" });
  const j = await ok(url, `query($id: ID!) { job(id: $id) { maxBytesPerSecond } }`, { id });
  assert.equal(j.job.maxBytesPerSecond, "500000");
  await act(url, "resumeJob", id);
  const done = await waitForState(url, id, ["TRANSFERRED", "ERROR", "TRANSIENT_ERROR"], 20_000);
  assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
  const evs = await eventsOf(s, id);
  const elapsed = atOf(evs, "TRANSFERRED") - atOf(evs, "TRANSFERRING");
  report(t, `per-job 500000 B/s, 2.5 MB: ${elapsed} ms (${Math.round(2_500_000 / (elapsed / 1000))} B/s)`);
  assert.ok(elapsed >= 4_250 && elapsed <= 5_750, `took ${elapsed} ms, expected 5000 ±15%`);
  assert.equal(sha(await completeAndRead(s, id, "bw/job.bin")), o.sha256Of(p));
});

test("global limit 400000 B/s: two 1 MB jobs at once take 5 s ±15% in total", async (t) => {
  const x = await startExtraServer({ worker: { maxBytesPerSecond: 400_000 }, retryDelayFloorSeconds: 0 });
  try {
    o.add({ path: "/bw/g1.bin", size: 1_000_000 });
    o.add({ path: "/bw/g2.bin", size: 1_000_000 });
    const a = await createJob(x.graphqlUrl, [{ remoteUrl: o.urlFor("/bw/g1.bin"), localPath: "g/1.bin", sha256: o.sha256Of("/bw/g1.bin") }]);
    const b = await createJob(x.graphqlUrl, [{ remoteUrl: o.urlFor("/bw/g2.bin"), localPath: "g/2.bin", sha256: o.sha256Of("/bw/g2.bin") }]);
    await Promise.all([act(x.graphqlUrl, "resumeJob", a), act(x.graphqlUrl, "resumeJob", b)]);
    const [da, db] = await Promise.all([
      waitForState(x.graphqlUrl, a, ["TRANSFERRED", "ERROR", "TRANSIENT_ERROR"], 20_000),
      waitForState(x.graphqlUrl, b, ["TRANSFERRED", "ERROR", "TRANSIENT_ERROR"], 20_000),
    ]);
    assert.equal(da.state, "TRANSFERRED", JSON.stringify(da));
    assert.equal(db.state, "TRANSFERRED", JSON.stringify(db));
    const ea = await eventsOf(x, a);
    const eb = await eventsOf(x, b);
    const start = Math.min(atOf(ea, "TRANSFERRING"), atOf(eb, "TRANSFERRING"));
    const endA = atOf(ea, "TRANSFERRED") - start;
    const endB = atOf(eb, "TRANSFERRED") - start;
    const total = Math.max(endA, endB);
    report(t, `global 400000 B/s, 2 x 1 MB: total ${total} ms (${Math.round(2_000_000 / (total / 1000))} B/s); job A done at ${endA} ms, job B at ${endB} ms`);
    assert.ok(total >= 4_250 && total <= 5_750, `took ${total} ms, expected 5000 ±15%`);
  } finally {
    await closeExtraServer(x);
  }
});

test("updateJob maxBytesPerSecond mid-transfer (200000 -> 1000000) speeds the running transfer up", async (t) => {
  const p = "/bw/up.bin";
  const size = 2_400_000;
  o.add({ path: p, size });
  const id = await createJob(url, [{ remoteUrl: o.urlFor(p), localPath: "bw/up.bin", sha256: o.sha256Of(p) }], { maxBytesPerSecond: "200000" });
  const ws = await openWs(s);
  try {
    const sub = ws.subscribe(`subscription($jobId: ID!) { jobProgress(jobId: $jobId) { bytesTransferred at } }`, { jobId: id });
    await sub.events.untilData(1, "the current progress");
    await act(url, "resumeJob", id);
    await waitFor(url, id, (j) => Number(j.progress.bytesTransferred) >= 400_000, "400 KB at 200 KB/s", 10_000);
    const changedAt = Date.now();
    const upd = await ok(url, `mutation($id: ID!) { updateJob(id: $id, input: { maxBytesPerSecond: "1000000" }) { job { maxBytesPerSecond state } } }`, { id });
    assert.equal(upd.updateJob.job.maxBytesPerSecond, "1000000");
    assert.equal(upd.updateJob.job.state, "TRANSFERRING", "the update does not interrupt the transfer");
    const done = await waitForState(url, id, ["TRANSFERRED", "ERROR", "TRANSIENT_ERROR"], 20_000);
    assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
    await sub.events.until((c) => c.data.some((d: any) => d.jobProgress.bytesTransferred === String(size)), "the last progress update", 5_000);
    sub.unsubscribe();

    const pts = (sub.events.data as any[]).slice(1).map((d) => ({ bytes: Number(d.jobProgress.bytesTransferred), at: Date.parse(d.jobProgress.at) }));
    const beforePts = pts.filter((x) => x.at < changedAt);
    const afterPts = pts.filter((x) => x.at > changedAt + 300);
    assert.ok(beforePts.length >= 3 && afterPts.length >= 2, `points before ${beforePts.length}, after ${afterPts.length}`);
    const slope = (a: { bytes: number; at: number }, b: { bytes: number; at: number }) => ((b.bytes - a.bytes) * 1000) / (b.at - a.at);
    const rateBefore = slope(beforePts[0]!, beforePts.at(-1)!);
    const rateAfter = slope(afterPts[0]!, afterPts.at(-1)!);
    const evs = await eventsOf(s, id);
    const total = atOf(evs, "TRANSFERRED") - atOf(evs, "TRANSFERRING");
    report(t, `updateJob 200000 -> 1000000: before ${Math.round(rateBefore)} B/s, after ${Math.round(rateAfter)} B/s; whole file ${total} ms (update at +${changedAt - atOf(evs, "TRANSFERRING")} ms)`);
    assert.ok(rateBefore >= 160_000 && rateBefore <= 240_000, `before the update: ${Math.round(rateBefore)} B/s, expected 200000 ±20%`);
    assert.ok(rateAfter >= 750_000 && rateAfter <= 1_250_000, `after the update: ${Math.round(rateAfter)} B/s, expected 1000000 ±25%`);
    assert.equal(sha(await completeAndRead(s, id, "bw/up.bin")), o.sha256Of(p));
  } finally {
    await closeWs(ws);
  }
});

// ---- 11. HEAD refused --------------------------------------------------------------------------------

test("an origin that refuses HEAD (403, like a presigned URL) still downloads, also across a resume; no HEAD is ever sent", async () => {
  const p = "/nohead/a.bin";
  o.add({ path: p, size: 500_000 });
  o.fault(p, { type: "noHead", status: 403 });
  o.fault(p, { type: "rate", bytesPerSecond: 4_000_000 });
  o.fault(p, { type: "reset", afterBytes: 200_000, times: 1 });
  const id = await createJob(url, [{ remoteUrl: o.urlFor(p), localPath: "nohead/a.bin", sha256: o.sha256Of(p) }], { minimumRetryDelay: 1 });
  await act(url, "resumeJob", id);
  const done = await waitForState(url, id, ["TRANSFERRED", "ERROR"], 15_000);
  assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
  assert.equal(done.errorCount, 1, "only the reset failed");
  const reqs = o.requests(p);
  assert.deepEqual(
    reqs.map((r) => r.method),
    ["GET", "GET"],
  );
  assert.match(reqs[1]!.range ?? "", /^bytes=\d+-$/);
  assert.equal(reqs[1]!.status, 206);
  assert.equal(sha(await completeAndRead(s, id, "nohead/a.bin")), o.sha256Of(p));
});

// ---- 12. 416 on resume --------------------------------------------------------------------------------

test("416 on resume (the file shrank under the same ETag): the file restarts from 0 once and finishes with the new content", async () => {
  const p = "/shrink/a.bin";
  const etag = '"same-etag-1"';
  o.add({ path: p, size: 1_000_000, seed: "shrink-v1", etag });
  o.fault(p, { type: "rate", bytesPerSecond: 4_000_000 }); // paced: a reset may drop bytes the client has not read yet
  o.fault(p, { type: "reset", afterBytes: 600_000, times: 1 });
  const id = await createJob(url, [{ remoteUrl: o.urlFor(p), localPath: "shrink/a.bin" }], { minimumRetryDelay: 2 });
  await act(url, "resumeJob", id);
  const t = await waitForState(url, id, ["TRANSIENT_ERROR", "ERROR", "TRANSFERRED"], 10_000);
  assert.equal(t.state, "TRANSIENT_ERROR", JSON.stringify(t));
  const offset = Number(t.progress.bytesTransferred);
  assert.ok(offset > 300_000, `resume offset ${offset} must lie beyond the new size`);

  o.change(p, { size: 300_000, seed: "shrink-v2", etag });
  const done = await waitForState(url, id, ["TRANSFERRED", "ERROR"], 15_000);
  assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
  assert.equal(done.errorCount, 1, "the 416 is handled, not counted as a failure");
  assert.deepEqual(done.progress, { bytesTotal: "300000", bytesTransferred: "300000", filesTotal: 1, filesTransferred: 1 });
  assert.equal(done.files.edges[0].node.bytesTotal, "300000");

  const reqs = o.requests(p).map((r) => ({ method: r.method, range: r.range, ifRange: r.ifRange, status: r.status }));
  assert.deepEqual(reqs, [
    { method: "GET", range: null, ifRange: null, status: 200 },
    { method: "GET", range: `bytes=${offset}-`, ifRange: etag, status: 416 },
    { method: "GET", range: null, ifRange: null, status: 200 },
  ]);
  const content = await completeAndRead(s, id, "shrink/a.bin");
  assert.equal(content.length, 300_000);
  assert.ok(content.equals(o.contentOf(p)), "the new version, not a mix");
});
