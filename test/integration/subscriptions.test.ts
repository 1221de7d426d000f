// jobStateChanged end to end: a real server on a fresh Postgres clone, clients over WebSocket
// (graphql-ws), SSE and a raw graphql-transport-ws socket, a second server process on the same
// database, replay from a cursor, concurrency, bad input, and commit-to-receive latency.
// Every wait is bounded (test/helpers/subscribe.ts); nothing sleeps for correctness.
import { setDefaultToken } from "../helpers/auth.js";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { startServer, ok, gql, type TestServer } from "../helpers/server.js";
import type { TestDatabase } from "../helpers/db.js";
import {
  connectRawWs,
  connectWs,
  startChildServer,
  subscribeSse,
  waitFor,
  withTimeout,
  type ChildServer,
  type Collector,
  type WsClient,
} from "../helpers/subscribe.js";
import { decodeId } from "../../src/graphql/ids.js";
import { openDatabase, type Database } from "../../src/store/db.js";
import { buildApp, type App } from "../../src/server/app.js";
import { createLogger } from "../../src/logger.js";

const SUB = /* GraphQL */ `
  subscription JobStateChanged($jobId: ID, $after: String) {
    jobStateChanged(jobId: $jobId, after: $after) {
      cursor
      kind
      previousState
      state
      at
      actor
      error { code }
      job { id state }
    }
  }
`;

interface Change {
  cursor: string;
  kind: string;
  previousState: string | null;
  state: string;
  at: string;
  actor: string | null;
  error: { code: string } | null;
  job: { id: string; state: string };
}
type SubData = { jobStateChanged: Change };

const STATE_KINDS = ["CREATED", "STATE_CHANGED"] as const;

let server: TestServer & { database: TestDatabase };

before(async () => {
  server = await startServer();
});

after(async () => {
  await server?.close();
});

// ---- helpers ----------------------------------------------------------------------------------

let jobCounter = 0;

/** Creates a job with one file (so it can be resumed); returns its global id. */
async function createJob(url = server.graphqlUrl, name = `sub-test-${++jobCounter}`): Promise<string> {
  const d = await ok<{ createJob: { job: { id: string; state: string } } }>(
    url,
    `mutation($input: CreateJobInput!) { createJob(input: $input) { job { id state } } }`,
    { input: { displayName: name, files: [{ remoteUrl: `http://127.0.0.1:9/${name}.bin`, localPath: `${name}.bin` }] } },
  );
  assert.equal(d.createJob.job.state, "SUSPENDED");
  return d.createJob.job.id;
}

type Op = "resumeJob" | "suspendJob" | "cancelJob" | "completeJob";

/** Runs a state mutation; returns the job's state from the payload. */
async function mutate(op: Op, id: string, url = server.graphqlUrl): Promise<string> {
  const d = await ok<Record<Op, { job: { state: string } }>>(url, `mutation($id: ID!) { ${op}(id: $id) { job { id state } } }`, { id });
  return d[op].job.state;
}

function uuidOf(globalId: string): string {
  return decodeId(globalId).id;
}

function changes(c: Collector<SubData>): Change[] {
  return c.data.map((d) => d.jobStateChanged);
}

/** The committed state transitions (CREATED, STATE_CHANGED) after `afterSeq`, in seq order. */
async function dbStateEvents(afterSeq: bigint, jobId?: string, db: Database = server.db) {
  return db.prisma.jobEvent.findMany({
    where: { seq: { gt: afterSeq }, kind: { in: [...STATE_KINDS] }, ...(jobId ? { jobId: uuidOf(jobId) } : {}) },
    orderBy: { seq: "asc" },
  });
}

async function lastSeq(): Promise<bigint> {
  const row = await server.db.prisma.jobEvent.findFirst({ orderBy: { seq: "desc" }, select: { seq: true } });
  return row?.seq ?? 0n;
}

function assertStrictlyIncreasing(cursors: string[], label: string): void {
  for (const c of cursors) assert.match(c, /^\d+$/, `${label}: cursor ${c} is not a decimal string`);
  for (let i = 1; i < cursors.length; i++) {
    assert.ok(BigInt(cursors[i]!) > BigInt(cursors[i - 1]!), `${label}: cursors not strictly increasing at ${i}: ${cursors.join(",")}`);
  }
}

/** Each event's job snapshot matches the event, and the event belongs to `jobId` (when given). */
function assertConsistent(evs: Change[], jobId?: string): void {
  for (const e of evs) {
    assert.equal(e.job.state, e.state, `job.state equals state in ${JSON.stringify(e)}`);
    if (jobId) assert.equal(e.job.id, jobId);
    assert.ok(!Number.isNaN(Date.parse(e.at)), `at is a date: ${e.at}`);
  }
}

async function subscribersReleased(app: App = server.app, label = "the server released every subscription"): Promise<void> {
  await waitFor(() => app.feed.subscriberCount === 0, label, { detail: () => `subscriberCount=${app.feed.subscriberCount}` });
}

function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

// ---- 1. WebSocket ----------------------------------------------------------------------------------

describe("jobStateChanged over WebSocket (graphql-ws)", () => {
  test("a job's transitions arrive exactly once, in order, with increasing cursors", { timeout: 60_000 }, async () => {
    const jobId = await createJob();
    // The CREATED event must be dispatched before we subscribe live, or it would (legitimately) be the
    // first event this live subscription sees: the live start point is the feed's position.
    await server.app.feed.sync();
    let ws: WsClient | undefined;
    try {
      ws = await connectWs(server.wsUrl);
      const sub = ws.subscribe<SubData>(SUB, { jobId });
      await waitFor(() => server.app.feed.subscriberCount === 1, "the subscription is registered with the feed");

      assert.equal(await mutate("resumeJob", jobId), "QUEUED");
      assert.equal(await mutate("suspendJob", jobId), "SUSPENDED");
      assert.equal(await mutate("cancelJob", jobId), "CANCELLED");
      await sub.events.untilData(3, "three transitions");
      await server.app.feed.sync();

      const evs = changes(sub.events);
      assert.deepEqual(
        evs.map((e) => [e.previousState, e.state, e.kind]),
        [
          ["SUSPENDED", "QUEUED", "STATE_CHANGED"],
          ["QUEUED", "SUSPENDED", "STATE_CHANGED"],
          ["SUSPENDED", "CANCELLED", "STATE_CHANGED"],
        ],
      );
      assertStrictlyIncreasing(evs.map((e) => e.cursor), "ws");
      assertConsistent(evs, jobId);
      for (const e of evs) assert.equal(e.actor, "local");
      assert.deepEqual(sub.events.graphqlErrors, []);

      // The cursors are the committed events' sequence numbers.
      const rows = await dbStateEvents(0n, jobId);
      assert.deepEqual(evs.map((e) => e.cursor), rows.slice(1).map((r) => r.seq.toString()));
      sub.unsubscribe();
    } finally {
      await ws?.dispose();
    }
    await subscribersReleased();
  });
});

// ---- 2. SSE ---------------------------------------------------------------------------------------

describe("jobStateChanged over SSE", () => {
  test("a job's transitions arrive exactly once, in order, with increasing cursors", { timeout: 60_000 }, async () => {
    const jobId = await createJob();
    await server.app.feed.sync();
    const sse = subscribeSse<SubData>(server.graphqlUrl, SUB, { jobId });
    try {
      const head = await withTimeout(sse.response, "SSE response head");
      assert.equal(head.status, 200);
      assert.match(head.contentType, /text\/event-stream/);
      await waitFor(() => server.app.feed.subscriberCount === 1, "the SSE subscription is registered with the feed");

      assert.equal(await mutate("resumeJob", jobId), "QUEUED");
      assert.equal(await mutate("suspendJob", jobId), "SUSPENDED");
      assert.equal(await mutate("cancelJob", jobId), "CANCELLED");
      await sse.events.untilData(3, "three transitions over SSE");
      await server.app.feed.sync();

      const evs = changes(sse.events);
      assert.deepEqual(
        evs.map((e) => [e.previousState, e.state]),
        [
          ["SUSPENDED", "QUEUED"],
          ["QUEUED", "SUSPENDED"],
          ["SUSPENDED", "CANCELLED"],
        ],
      );
      assertStrictlyIncreasing(evs.map((e) => e.cursor), "sse");
      assertConsistent(evs, jobId);
      assert.equal(sse.events.completed, false, "a live subscription does not complete");
    } finally {
      await sse.close();
    }
    await subscribersReleased(server.app, "closing the SSE request releases the subscription");
  });

  test("the all-jobs stream (no jobId) sees the creation of new jobs", { timeout: 60_000 }, async () => {
    await server.app.feed.sync();
    const sse = subscribeSse<SubData>(server.graphqlUrl, SUB, {});
    try {
      await waitFor(() => server.app.feed.subscriberCount === 1, "the SSE subscription is registered with the feed");
      const a = await createJob();
      const b = await createJob();
      await sse.events.until(
        (c) => changes(c as Collector<SubData>).filter((e) => e.job.id === a || e.job.id === b).length >= 2,
        "the creation events of both jobs",
      );
      const evs = changes(sse.events).filter((e) => e.job.id === a || e.job.id === b);
      assert.deepEqual(
        evs.map((e) => [e.job.id, e.kind, e.previousState, e.state]),
        [
          [a, "CREATED", null, "SUSPENDED"],
          [b, "CREATED", null, "SUSPENDED"],
        ],
      );
      assertStrictlyIncreasing(changes(sse.events).map((e) => e.cursor), "all jobs");
      assertConsistent(evs);
    } finally {
      await sse.close();
    }
    await subscribersReleased();
  });
});

// ---- 3. Replay after a cursor ----------------------------------------------------------------------

describe("jobStateChanged replay from a cursor", () => {
  test("after: <cursor> replays exactly what followed it, then goes live", { timeout: 60_000 }, async () => {
    const jobId = await createJob();
    await server.app.feed.sync();
    let ws: WsClient | undefined;
    try {
      ws = await connectWs(server.wsUrl);
      // First listener: three transitions, remember the cursor of the second.
      const first = ws.subscribe<SubData>(SUB, { jobId });
      await waitFor(() => server.app.feed.subscriberCount === 1, "first subscription registered");
      await mutate("resumeJob", jobId); // e1 SUSPENDED->QUEUED
      await mutate("suspendJob", jobId); // e2 QUEUED->SUSPENDED
      await mutate("resumeJob", jobId); // e3 SUSPENDED->QUEUED
      await first.events.untilData(3, "first listener's three events");
      const seen = changes(first.events);
      const cursor = seen[1]!.cursor;
      first.unsubscribe();
      await subscribersReleased(server.app, "first subscription released after unsubscribe");

      // Nobody listens now.
      await mutate("suspendJob", jobId); // e4 QUEUED->SUSPENDED
      await mutate("resumeJob", jobId); // e5 SUSPENDED->QUEUED

      const second = ws.subscribe<SubData>(SUB, { jobId, after: cursor });
      await second.events.untilData(3, "replay of e3, e4, e5");
      let evs = changes(second.events);
      assert.deepEqual(
        evs.map((e) => [e.previousState, e.state]),
        [
          ["SUSPENDED", "QUEUED"],
          ["QUEUED", "SUSPENDED"],
          ["SUSPENDED", "QUEUED"],
        ],
      );
      assert.equal(evs[0]!.cursor, seen[2]!.cursor, "the first replayed event is the one right after the cursor");

      // Live after the replay.
      await waitFor(() => server.app.feed.subscriberCount === 1, "second subscription registered");
      assert.equal(await mutate("cancelJob", jobId), "CANCELLED"); // e6
      await second.events.untilData(4, "the live transition after the replay");
      await server.app.feed.sync();
      evs = changes(second.events);
      assert.equal(evs.length, 4, `no duplicates: ${JSON.stringify(evs)}`);
      assert.deepEqual(evs[3]!.previousState, "QUEUED");
      assert.deepEqual(evs[3]!.state, "CANCELLED");
      assertStrictlyIncreasing(evs.map((e) => e.cursor), "replay");
      assertConsistent(evs, jobId);
      const rows = await dbStateEvents(BigInt(cursor), jobId);
      assert.deepEqual(evs.map((e) => e.cursor), rows.map((r) => r.seq.toString()), "exactly the committed events after the cursor");
      second.unsubscribe();

      // after: "0" replays the whole history, starting with the creation.
      const all = ws.subscribe<SubData>(SUB, { jobId, after: "0" });
      await all.events.untilData(7, "the whole history");
      const hist = changes(all.events);
      assert.deepEqual(
        hist.map((e) => [e.kind, e.previousState, e.state]),
        [
          ["CREATED", null, "SUSPENDED"],
          ["STATE_CHANGED", "SUSPENDED", "QUEUED"],
          ["STATE_CHANGED", "QUEUED", "SUSPENDED"],
          ["STATE_CHANGED", "SUSPENDED", "QUEUED"],
          ["STATE_CHANGED", "QUEUED", "SUSPENDED"],
          ["STATE_CHANGED", "SUSPENDED", "QUEUED"],
          ["STATE_CHANGED", "QUEUED", "CANCELLED"],
        ],
      );
      const allRows = await dbStateEvents(0n, jobId);
      assert.deepEqual(hist.map((e) => e.cursor), allRows.map((r) => r.seq.toString()));
      assertConsistent(hist, jobId);
      all.unsubscribe();

      // The same replay over SSE.
      const sse = subscribeSse<SubData>(server.graphqlUrl, SUB, { jobId, after: cursor });
      try {
        await sse.events.untilData(4, "SSE replay after the cursor");
        assert.deepEqual(changes(sse.events).map((e) => e.cursor), rows.map((r) => r.seq.toString()));
      } finally {
        await sse.close();
      }
    } finally {
      await ws?.dispose();
    }
    await subscribersReleased();
  });
});

// ---- 4. No gap under concurrency -----------------------------------------------------------------

/**
 * 5 jobs, 40 concurrent resume/suspend calls. One subscriber (all jobs) is live from before the jobs
 * exist; three more start from a cursor taken before the jobs were created: one before the storm, one
 * after the first call returns, one half-way, so the replay-to-live handover happens while events are
 * committing. Each must see exactly the committed
 * CREATED/STATE_CHANGED rows after the cursor, in order, with consistent per-job chains.
 */
async function concurrencyScenario(graphqlUrl: string, wsUrl: string, app: App): Promise<void> {
  await app.feed.sync();
  const cursor = await lastSeq();
  let ws: WsClient | undefined;
  try {
    ws = await connectWs(wsUrl);
    // A live subscriber (no `after`), registered while the feed stands at `cursor`: it sees the same
    // events as the others, but all of them through the live path (and its bursts).
    const live = ws.subscribe<SubData>(SUB, {});
    await waitFor(() => app.feed.subscriberCount === 1, "the live subscriber is registered");

    const jobs: string[] = [];
    for (let i = 0; i < 5; i++) jobs.push(await createJob(graphqlUrl));

    const subs = [live, ws.subscribe<SubData>(SUB, { after: cursor.toString() })];
    let done = 0;
    const startedAt: number[] = [];
    const ops = Array.from({ length: 40 }, (_, i) => {
      const job = jobs[i % 5]!;
      const op: Op = Math.floor(i / 5) % 2 === 0 ? "resumeJob" : "suspendJob";
      return gql(graphqlUrl, `mutation($id: ID!) { ${op}(id: $id) { job { id state } } }`, { id: job }).then((r) => {
        done++;
        if (done === 1 || done === 20) {
          startedAt.push(done);
          subs.push(ws!.subscribe<SubData>(SUB, { after: cursor.toString() }));
        }
        return r;
      });
    });
    const results = await withTimeout(Promise.all(ops), "40 concurrent mutations", 30_000);
    for (const r of results) assert.deepEqual(r.errors, undefined, `a concurrent call failed: ${JSON.stringify(r.errors)}`);
    assert.equal(subs.length, 4);

    // A sentinel after everything: once a subscriber has it, it has everything before it.
    const sentinel = await createJob(graphqlUrl);
    const rows = await dbStateEvents(cursor);
    const sentinelRow = rows.find((r) => r.jobId === uuidOf(sentinel) && r.kind === "CREATED");
    assert.ok(sentinelRow);
    const expected = rows.filter((r) => r.seq <= sentinelRow.seq).map((r) => r.seq.toString());
    assert.ok(expected.length >= 6 + 5, `at least the creations and some transitions: ${expected.length}`);

    for (const [n, sub] of subs.entries()) {
      await sub.events.until(
        (c) => changes(c as Collector<SubData>).some((e) => e.job.id === sentinel) || c.graphqlErrors.length > 0 || c.completed,
        `subscriber ${n} reaches the sentinel`,
      );
      assert.deepEqual(sub.events.graphqlErrors, [], `subscriber ${n} got errors`);
      const evs = changes(sub.events);
      const upTo = evs.slice(0, evs.findIndex((e) => e.job.id === sentinel) + 1);
      const got = upTo.map((e) => e.cursor);
      assert.equal(new Set(got).size, got.length, `subscriber ${n}: duplicates in ${got.join(",")}`);
      assertStrictlyIncreasing(got, `subscriber ${n}`);
      assert.deepEqual(got, expected, `subscriber ${n}: exactly the committed events after ${cursor}`);
      assertConsistent(upTo);

      // Per job: a chain from CREATED, each previousState the state of the job's previous event.
      for (const job of jobs) {
        const chain = upTo.filter((e) => e.job.id === job);
        assert.equal(chain[0]?.kind, "CREATED", `subscriber ${n}: job ${job} starts with CREATED`);
        assert.equal(chain[0]?.previousState, null);
        for (let i = 1; i < chain.length; i++) {
          assert.equal(chain[i]!.previousState, chain[i - 1]!.state, `subscriber ${n}: job ${job} event ${i}: ${JSON.stringify(chain)}`);
          assert.notEqual(chain[i]!.previousState, chain[i]!.state, "a transition changes the state");
        }
        // Matches the database row by row.
        const dbChain = rows.filter((r) => r.jobId === uuidOf(job));
        assert.deepEqual(
          chain.map((e) => [e.cursor, e.previousState, e.state]),
          dbChain.map((r) => [r.seq.toString(), r.previousState, r.state]),
        );
      }
    }
    for (const s of subs) s.unsubscribe();
  } finally {
    await ws?.dispose();
  }
  await subscribersReleased(app);
}

describe("jobStateChanged under concurrency", () => {
  test("40 concurrent calls on 5 jobs: no gap, no duplicate, per-job chains intact", { timeout: 90_000 }, async () => {
    await concurrencyScenario(server.graphqlUrl, server.wsUrl, server.app);
  });

  test("the same with tiny replay pages and a tiny live queue (multi-page replay, slow-consumer fallback)", { timeout: 90_000 }, async () => {
    // A second app in this process on the same database, with its own feed tuned to force the
    // page-by-page replay and the "too far behind: go back to the table" path.
    const db = await openDatabase({ databaseUrl: server.database.url, dataDir: "", migrate: false });
    const storageRoot = fs.mkdtempSync(path.join(os.tmpdir(), "haul-files-"));
    const app = buildApp({
      config: { host: "127.0.0.1", port: 0, storageRoot, retryDelayFloorSeconds: 5, maxFilesPerJob: 200, graphiql: false, allowedNetworks: ["127.0.0.0/8"] },
      db,
      logger: createLogger(process.env.HAUL_TEST_LOG ?? "silent"),
      feedOptions: { pageSize: 4, maxQueue: 1 },
    });
    // Diagnostics only (private internals, guarded): count replay queries and slow-consumer fallbacks,
    // to show the run exercised those paths. No assertion: how often they happen depends on timing.
    const seen = { replayQueries: 0, fallbacks: 0 };
    const subscribe = app.feed.subscribe.bind(app.feed);
    app.feed.subscribe = (opts) => {
      const sub = subscribe(opts) as unknown as Record<string, unknown>;
      const offer = sub.offer;
      const replayPage = sub.replayPage;
      if (typeof offer === "function" && typeof replayPage === "function" && typeof sub.replaying === "boolean") {
        sub.offer = (e: unknown) => {
          const was = sub.replaying;
          offer.call(sub, e);
          if (!was && sub.replaying) seen.fallbacks++;
        };
        sub.replayPage = () => {
          seen.replayQueries++;
          return replayPage.call(sub);
        };
      }
      return sub as unknown as ReturnType<typeof subscribe>;
    };
    try {
      const url = await app.start();
      setDefaultToken(url, server.userToken);
      await concurrencyScenario(`${url}/graphql`, `${url.replace(/^http/, "ws")}/graphql`, app);
      console.log(`# tuned feed (pageSize 4, maxQueue 1), 4 subscribers: ${seen.replayQueries} replay queries, ${seen.fallbacks} slow-consumer fallbacks`);
    } finally {
      await app.stop();
      await db.close();
      fs.rmSync(storageRoot, { recursive: true, force: true });
    }
  });
});

// ---- 5. Two processes, one database ----------------------------------------------------------------

describe("jobStateChanged across processes", () => {
  test("a second server process delivers every transition committed by this one", { timeout: 90_000 }, async () => {
    let child: ChildServer | undefined;
    let ws: WsClient | undefined;
    try {
      child = await startChildServer(server.database.url);
      const jobId = await createJob(); // on A
      ws = await connectWs(child.wsUrl);
      // From the creation on, so nothing can be missed whenever B's subscription becomes active; the
      // CREATED event arriving proves it is registered with B's feed, and what follows comes live
      // (B learns of A's commits through Postgres NOTIFY).
      const sub = ws.subscribe<SubData>(SUB, { jobId, after: "0" });
      await sub.events.untilData(1, "the CREATED event from process B");
      assert.equal(changes(sub.events)[0]!.kind, "CREATED");

      // One at a time (each must arrive on B), then a burst.
      const lat: number[] = [];
      const expected: [string, string][] = [];
      for (let i = 0; i < 6; i++) {
        const op: Op = i % 2 === 0 ? "resumeJob" : "suspendJob";
        await mutate(op, jobId);
        const t = performance.now();
        expected.push(op === "resumeJob" ? ["SUSPENDED", "QUEUED"] : ["QUEUED", "SUSPENDED"]);
        await sub.events.untilData(expected.length + 1, `transition ${i} on process B`);
        lat.push(sub.events.receivedAt[expected.length]! - t);
      }
      for (let i = 0; i < 6; i++) {
        const op: Op = i % 2 === 0 ? "resumeJob" : "suspendJob";
        await mutate(op, jobId);
        expected.push(op === "resumeJob" ? ["SUSPENDED", "QUEUED"] : ["QUEUED", "SUSPENDED"]);
      }
      await mutate("cancelJob", jobId);
      expected.push(["SUSPENDED", "CANCELLED"]);
      await sub.events.untilData(expected.length + 1, "every transition on process B");

      const evs = changes(sub.events);
      assert.deepEqual(evs.slice(1).map((e) => [e.previousState, e.state]), expected);
      assertStrictlyIncreasing(evs.map((e) => e.cursor), "process B");
      assertConsistent(evs, jobId);
      const rows = await dbStateEvents(0n, jobId);
      assert.deepEqual(evs.map((e) => e.cursor), rows.map((r) => r.seq.toString()));
      console.log(
        `# cross-process (A commits, B delivers over WS), ${lat.length} sequential transitions: ` +
          `HTTP response on A -> receipt from B: p50 ${percentile(lat, 50).toFixed(1)} ms, max ${Math.max(...lat).toFixed(1)} ms`,
      );
      sub.unsubscribe();
    } finally {
      await ws?.dispose();
      await child?.stop();
    }
  });
});

// ---- 6. Bad input --------------------------------------------------------------------------------

describe("jobStateChanged with bad input", () => {
  test("after: \"abc\" is BAD_USER_INPUT and the socket stays usable", { timeout: 60_000 }, async () => {
    const jobId = await createJob();
    let ws: WsClient | undefined;
    try {
      ws = await connectWs(server.wsUrl);
      const bad = ws.subscribe<SubData>(SUB, { jobId, after: "abc" });
      await bad.events.untilErrorOrEnd("an error for after: abc");
      assert.equal(bad.events.graphqlErrors[0]?.extensions?.code, "BAD_USER_INPUT", JSON.stringify(bad.events.graphqlErrors));
      assert.equal(bad.events.data.length, 0);

      const good = ws.subscribe<SubData>(SUB, { jobId, after: "0" });
      await good.events.untilData(1, "a valid subscription on the same socket");
      assert.equal(changes(good.events)[0]!.kind, "CREATED");
      good.unsubscribe();
      assert.deepEqual({ connected: ws.stats.connected, closed: ws.stats.closed }, { connected: 1, closed: 0 }, "one socket, never closed");
    } finally {
      await ws?.dispose();
    }
    await subscribersReleased();
  });

  test("jobId of a job that does not exist is NOT_FOUND; a malformed jobId is BAD_USER_INPUT", { timeout: 60_000 }, async () => {
    let ws: WsClient | undefined;
    try {
      ws = await connectWs(server.wsUrl);
      const missing = ws.subscribe<SubData>(SUB, { jobId: randomUUID() });
      await missing.events.untilErrorOrEnd("an error for a missing job");
      assert.equal(missing.events.graphqlErrors[0]?.extensions?.code, "NOT_FOUND", JSON.stringify(missing.events.graphqlErrors));

      const malformed = ws.subscribe<SubData>(SUB, { jobId: "not-a-job-id" });
      await malformed.events.untilErrorOrEnd("an error for a malformed id");
      assert.equal(malformed.events.graphqlErrors[0]?.extensions?.code, "BAD_USER_INPUT", JSON.stringify(malformed.events.graphqlErrors));
      assert.equal(ws.stats.closed, 0);
    } finally {
      await ws?.dispose();
    }
    // The same over SSE.
    for (const [vars, code] of [
      [{ after: "abc" }, "BAD_USER_INPUT"],
      [{ jobId: randomUUID() }, "NOT_FOUND"],
    ] as const) {
      const sse = subscribeSse<SubData>(server.graphqlUrl, SUB, vars);
      try {
        await sse.events.untilErrorOrEnd(`SSE error for ${JSON.stringify(vars)}`);
        assert.equal(sse.events.graphqlErrors[0]?.extensions?.code, code, JSON.stringify(sse.events.payloads));
      } finally {
        await sse.close();
      }
    }
    await subscribersReleased();
  });

  test("a syntax error answers that subscription id with an error; the socket stays open", { timeout: 60_000 }, async () => {
    const jobId = await createJob();
    const raw = await connectRawWs(server.wsUrl);
    try {
      raw.send({ id: "broken-1", type: "subscribe", payload: { query: "subscription { jobStateChanged(" } });
      await raw.until((m) => m.some((x) => x.id === "broken-1"), "a message for broken-1");
      const reply = raw.messages.find((x) => x.id === "broken-1")!;
      assert.equal(reply.type, "error", JSON.stringify(reply));
      assert.ok(Array.isArray(reply.payload) && reply.payload.length > 0 && /Syntax Error/.test(reply.payload[0].message), JSON.stringify(reply));

      raw.send({ id: "good-1", type: "subscribe", payload: { query: SUB, variables: { jobId, after: "0" } } });
      await raw.until((m) => m.some((x) => x.id === "good-1" && x.type === "next"), "a next message for good-1");
      const next = raw.messages.find((x) => x.id === "good-1" && x.type === "next")!;
      assert.equal(next.payload.data.jobStateChanged.kind, "CREATED");
      assert.equal(raw.closed, null, "the socket is still open");
      raw.send({ id: "good-1", type: "complete" });
    } finally {
      await raw.close();
    }
    await subscribersReleased();
  });

  // Regression: parseCursor (src/graphql/schema/events.ts) once accepted any 1-19 digit string, but
  // 9223372036854775808..9999999999999999999 do not fit Postgres BIGINT; the replay query then failed
  // inside the subscription's iterator and the client got a masked INTERNAL.
  test("a cursor beyond the 64-bit range is BAD_USER_INPUT, not INTERNAL", { timeout: 60_000 }, async () => {
    let ws: WsClient | undefined;
    const got: Record<string, unknown> = {};
    try {
      const client = (ws = await connectWs(server.wsUrl));
      for (const cursor of ["9223372036854775808", "9999999999999999999"]) {
        const sub = client.subscribe<SubData>(SUB, { after: cursor });
        await sub.events.untilErrorOrEnd(`an error for after: ${cursor}`);
        got[cursor] = sub.events.graphqlErrors[0]?.extensions?.code;
      }
      // Whatever the code, a failed subscription must not stay registered with the feed.
      await subscribersReleased(server.app, "failed subscriptions are released while the socket is still open");
    } finally {
      await ws?.dispose();
    }
    assert.deepEqual(got, { "9223372036854775808": "BAD_USER_INPUT", "9999999999999999999": "BAD_USER_INPUT" });
  });

  // Found while writing these tests: over HTTP and SSE a syntax error carries extensions.code
  // (GRAPHQL_PARSE_FAILED); over WebSocket, src/server/app.ts onSubscribe returns the raw parse and
  // validation errors, which bypass maskError, so the client gets no extensions.code at all.
  test("WebSocket parse and validation errors carry the same extensions.code as over HTTP", { timeout: 60_000 }, async () => {
    const docs = ["subscription { jobStateChanged(", "subscription { jobStateChanged { noSuchField } }"];
    const raw = await connectRawWs(server.wsUrl);
    try {
      for (const [i, query] of docs.entries()) {
        const http = await gql(server.graphqlUrl, query);
        const httpCode = http.errors?.[0]?.extensions?.code;
        assert.ok(httpCode, `HTTP gives a code: ${JSON.stringify(http)}`);
        const id = `doc-${i}`;
        raw.send({ id, type: "subscribe", payload: { query } });
        await raw.until((m) => m.some((x) => x.id === id), `a reply for ${id}`);
        const reply = raw.messages.find((x) => x.id === id)!;
        assert.equal(reply.type, "error");
        assert.equal(reply.payload?.[0]?.extensions?.code, httpCode, `${query}: ${JSON.stringify(reply)}`);
      }
    } finally {
      await raw.close();
    }
  });
});

// ---- 7. Latency ------------------------------------------------------------------------------------

describe("jobStateChanged latency", () => {
  test("commit-to-receive latency over WebSocket, 50 sequential transitions", { timeout: 120_000 }, async () => {
    const jobId = await createJob();
    await server.app.feed.sync();
    let ws: WsClient | undefined;
    try {
      ws = await connectWs(server.wsUrl);
      const sub = ws.subscribe<SubData>(SUB, { jobId });
      await waitFor(() => server.app.feed.subscriberCount === 1, "subscription registered");
      const fromResponse: number[] = [];
      const fromAt: number[] = [];
      for (let i = 0; i < 50; i++) {
        const op: Op = i % 2 === 0 ? "resumeJob" : "suspendJob";
        await mutate(op, jobId);
        const responded = performance.now();
        await sub.events.untilData(i + 1, `transition ${i}`);
        const e = changes(sub.events)[i]!;
        assert.equal(e.state, op === "resumeJob" ? "QUEUED" : "SUSPENDED");
        // Negative when the event reached the subscriber before the mutation's response reached us.
        fromResponse.push(sub.events.receivedAt[i]! - responded);
        fromAt.push(sub.events.receivedWall[i]! - Date.parse(e.at));
      }
      assert.equal(changes(sub.events).length, 50);
      assertStrictlyIncreasing(changes(sub.events).map((e) => e.cursor), "latency run");
      const fmt = (xs: number[]) => `p50 ${percentile(xs, 50).toFixed(2)} ms, p99 ${percentile(xs, 99).toFixed(2)} ms, min ${Math.min(...xs).toFixed(2)}, max ${Math.max(...xs).toFixed(2)}`;
      console.log(`# latency, mutation HTTP response -> WS receipt (50 transitions): ${fmt(fromResponse)}`);
      console.log(`# latency, event.at (ms precision, taken before COMMIT) -> WS receipt: ${fmt(fromAt)}`);
      sub.unsubscribe();
    } finally {
      await ws?.dispose();
    }
    await subscribersReleased();
  });
});
