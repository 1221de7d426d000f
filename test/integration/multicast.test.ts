// Shared execution of subscription events (src/graphql/multicast.ts): subscribers with the same
// selection and visibility scope share one execution per live event. The correctness side: each
// scope still sees exactly its own events, a subscriber joining mid-stream with `after` gets no gap
// and no duplicate, and one member leaving does not disturb the others. Real server, real Postgres.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { startServer, ok, type TestServer } from "../helpers/server.js";
import type { TestDatabase } from "../helpers/db.js";
import { connectRawWs, connectWs, subscribeSse, waitFor, type Collector, type RawMessage, type WsClient } from "../helpers/subscribe.js";

const SUB = /* GraphQL */ `
  subscription ($jobId: ID, $after: String) {
    jobStateChanged(jobId: $jobId, after: $after) { cursor state job { id state owner } }
  }
`;
/** The same selection written differently (name, layout, literal arguments): the same group. */
const SUB_OTHER_SPELLING = `subscription Named { jobStateChanged(after: null) {
  cursor state job { id state owner } } }`;

interface Change {
  cursor: string;
  state: string;
  job: { id: string; state: string; owner: string };
}
type Data = { jobStateChanged: Change };

let server: TestServer & { database: TestDatabase };
let otherToken: string;

before(async () => {
  server = await startServer();
  const d = await ok<{ createApiToken: { token: string } }>(
    server.graphqlUrl,
    `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token } }`,
    { input: { user: "other", role: "USER", description: "multicast test" } },
    server.adminToken,
  );
  otherToken = d.createApiToken.token;
});

after(async () => {
  await server?.close();
});

let n = 0;
async function createJob(token: string): Promise<string> {
  const name = `mc-${++n}`;
  const d = await ok<{ createJob: { job: { id: string } } }>(
    server.graphqlUrl,
    `mutation($input: CreateJobInput!) { createJob(input: $input) { job { id } } }`,
    { input: { displayName: name, files: [{ remoteUrl: `http://127.0.0.1:9/${name}.bin`, localPath: `${name}.bin` }] } },
    token,
  );
  return d.createJob.job.id;
}

async function flip(id: string, token: string, op: "resumeJob" | "suspendJob"): Promise<void> {
  await ok(server.graphqlUrl, `mutation($id: ID!) { ${op}(id: $id) { job { id } } }`, { id }, token);
}

const changes = (c: Collector<Data>) => c.data.map((d) => d.jobStateChanged);
const cursors = (c: Collector<Data>) => changes(c).map((e) => e.cursor);

async function released(): Promise<void> {
  await waitFor(() => server.app.feed.subscriberCount === 0 && server.app.multicast.groups === 0, "every subscription and group released", {
    detail: () => `subscribers=${server.app.feed.subscriberCount} groups=${server.app.multicast.groups}`,
  });
}

describe("shared execution of subscription events", () => {
  test("two users and an admin on the same document: one group per scope, each sees exactly its own events", { timeout: 60_000 }, async () => {
    const clients: WsClient[] = [];
    try {
      const ws = async (token: string) => {
        const c = await connectWs(server.wsUrl, token);
        clients.push(c);
        return c;
      };
      const local = [await ws(server.userToken), await ws(server.userToken), await ws(server.userToken)];
      const other = [await ws(otherToken), await ws(otherToken)];
      const admin = [await ws(server.adminToken), await ws(server.adminToken)];
      const subs = {
        local: local.map((c, i) => c.subscribe<Data>(i === 2 ? SUB_OTHER_SPELLING : SUB).events),
        other: other.map((c) => c.subscribe<Data>(SUB).events),
        admin: admin.map((c) => c.subscribe<Data>(SUB).events),
      };
      await waitFor(() => server.app.feed.subscriberCount === 7, "7 subscriptions registered");
      assert.equal(server.app.multicast.groups, 3, "one group per visibility scope");

      const before = server.app.multicast.executions;
      const mine = await createJob(server.userToken);
      const theirs = await createJob(otherToken);
      await flip(mine, server.userToken, "resumeJob");
      await flip(theirs, otherToken, "resumeJob");
      await flip(mine, server.userToken, "suspendJob");
      // local: CREATED, QUEUED, SUSPENDED of its job; other: CREATED, QUEUED of its job; admin: all 5.
      for (const c of subs.local) await c.untilData(3, "local's events");
      for (const c of subs.other) await c.untilData(2, "other's events");
      for (const c of subs.admin) await c.untilData(5, "admin's events");
      // A straggler would show up on the next event: one more of each, then compare.
      const marker = await createJob(otherToken);
      for (const c of subs.other) await c.untilData(3, "other's marker");
      for (const c of subs.admin) await c.untilData(6, "admin's marker");

      for (const c of subs.local) {
        assert.deepEqual(changes(c).map((e) => [e.job.id, e.state]), [[mine, "SUSPENDED"], [mine, "QUEUED"], [mine, "SUSPENDED"]]);
        assert.ok(changes(c).every((e) => e.job.owner === "local"));
      }
      for (const c of subs.other) {
        assert.deepEqual(changes(c).map((e) => [e.job.id, e.state]), [[theirs, "SUSPENDED"], [theirs, "QUEUED"], [marker, "SUSPENDED"]]);
        assert.ok(changes(c).every((e) => e.job.owner === "other"));
      }
      for (const c of subs.admin) assert.equal(changes(c).length, 6);
      assert.deepEqual(cursors(subs.admin[0]!), cursors(subs.admin[1]!));
      // Executions: once per event and group (local 3, other 3, admin 6), not once per subscriber (29).
      assert.equal(server.app.multicast.executions - before, 12);
    } finally {
      for (const c of clients) await c.dispose();
    }
    await released();
  });

  test("SSE subscribers share the groups of WebSocket subscribers and receive the same events", { timeout: 60_000 }, async () => {
    const ws = await connectWs(server.wsUrl, server.userToken);
    const sse = subscribeSse<Data>(server.graphqlUrl, SUB, {}, server.userToken);
    try {
      const a = ws.subscribe<Data>(SUB).events;
      await waitFor(() => server.app.feed.subscriberCount === 2, "2 subscriptions registered");
      assert.equal(server.app.multicast.groups, 1);
      const job = await createJob(server.userToken);
      await flip(job, server.userToken, "resumeJob");
      await a.untilData(2, "WebSocket events");
      await sse.events.untilData(2, "SSE events");
      assert.deepEqual(cursors(sse.events), cursors(a));
      assert.deepEqual(sse.events.data, a.data);
    } finally {
      sse.close();
      await ws.dispose();
    }
    await released();
  });

  test("a subscriber joining mid-stream with `after` gets no gap and no duplicate; one member leaving does not disturb the others", { timeout: 90_000 }, async () => {
    const c = await connectWs(server.wsUrl, server.userToken);
    try {
      const jobs = [await createJob(server.userToken), await createJob(server.userToken)];
      const first = c.subscribe<Data>(SUB);
      const leaver = c.subscribe<Data>(SUB);
      await waitFor(() => server.app.feed.subscriberCount === 2, "2 subscriptions registered");
      // A writer flipping the jobs while subscribers join and leave.
      let writing = true;
      let flips = 0;
      const writer = (async () => {
        while (writing) {
          const j = jobs[flips % 2]!;
          await flip(j, server.userToken, Math.floor(flips / 2) % 2 === 0 ? "resumeJob" : "suspendJob");
          flips++;
        }
      })();
      await first.events.untilData(6, "the live stream");
      // Join with a cursor from a few events back: replay, then the shared live stream.
      const from = changes(first.events)[2]!.cursor;
      const late = c.subscribe<Data>(SUB, { after: from });
      await first.events.untilData(12, "more live events");
      leaver.unsubscribe();
      await waitFor(() => server.app.feed.subscriberCount === 2, "the leaver is released");
      await first.events.untilData(20, "live events after the leave");
      writing = false;
      await writer;
      const total = await ok<{ eventCursor: string }>(server.graphqlUrl, `{ eventCursor }`);
      await first.events.until((x) => cursors(x).includes(total.eventCursor), "the last event (first)");
      await late.events.until((x) => cursors(x).includes(total.eventCursor), "the last event (late)");

      const all = cursors(first.events);
      assert.equal(new Set(all).size, all.length, "no duplicate on the live member");
      const expectedLate = all.filter((x) => BigInt(x) > BigInt(from));
      assert.deepEqual(cursors(late.events), expectedLate, "the late member: exactly what followed its cursor, in order");
      // The member that left got a prefix of the same stream, and nothing after it left.
      const left = cursors(leaver.events);
      assert.deepEqual(left, all.slice(0, left.length));
      assert.equal(leaver.events.graphqlErrors.length + first.events.graphqlErrors.length + late.events.graphqlErrors.length, 0);
      assert.equal(server.app.multicast.groups, 1, "first and late share one group");
    } finally {
      await c.dispose();
    }
    await released();
  });
});

describe("a live shared subscription is detached from graphql-ws (src/server/ws.ts)", () => {
  test("it lives on without graphql-ws: no complete sent, the client's complete ends only it, its id is reusable, a duplicate id closes 4409", { timeout: 60_000 }, async () => {
    const raw = await connectRawWs(server.wsUrl, server.userToken);
    const of = (id: string) => (m: RawMessage[]) => m.filter((x) => x.id === id);
    const nexts = (id: string) => (m: RawMessage[]) => of(id)(m).filter((x) => x.type === "next");
    try {
      const job = await createJob(server.userToken);
      // Subscribe only once the feed has delivered the job's CREATED: a live subscription starts at
      // the feed's position, so one made earlier would also get it (a flake under load).
      const created = await ok<{ eventCursor: string }>(server.graphqlUrl, `{ eventCursor }`);
      await waitFor(() => server.app.feed.position >= BigInt(created.eventCursor), "the feed caught up");
      raw.send({ id: "a", type: "subscribe", payload: { query: SUB, variables: { jobId: job } } });
      raw.send({ id: "b", type: "subscribe", payload: { query: SUB } });
      await waitFor(() => server.app.feed.subscriberCount === 2, "2 subscriptions registered");
      await flip(job, server.userToken, "resumeJob");
      await raw.until((m) => nexts("a")(m).length === 1 && nexts("b")(m).length === 1, "both receive the first event");
      // Handed over and detached by now: graphql-ws's own end of them was not told to the client.
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(raw.messages.filter((x) => x.type !== "next" && x.type !== "connection_ack"), [], "no complete, no error");

      raw.send({ id: "b", type: "complete" });
      await waitFor(() => server.app.feed.subscriberCount === 1, "b released, a kept");
      await flip(job, server.userToken, "suspendJob");
      await raw.until((m) => nexts("a")(m).length === 2, "a receives the second event");
      assert.equal(nexts("b")(raw.messages).length, 1, "nothing for b after its complete");

      // The id of a completed subscription can be used again.
      raw.send({ id: "b", type: "subscribe", payload: { query: SUB } });
      await waitFor(() => server.app.feed.subscriberCount === 2, "b again");
      await flip(job, server.userToken, "resumeJob");
      await raw.until((m) => nexts("a")(m).length === 3 && nexts("b")(m).length === 2, "both receive the third event");
      assert.deepEqual(
        nexts("a")(raw.messages).map((x) => x.payload.data.jobStateChanged.state),
        ["QUEUED", "SUSPENDED", "QUEUED"],
      );
      assert.equal(raw.messages.filter((x) => x.type === "complete" || x.type === "error").length, 0);

      // An id in use, detached or not: closed as graphql-ws closes it.
      raw.send({ id: "a", type: "subscribe", payload: { query: SUB } });
      await raw.until(() => raw.closed !== null, "the socket closes");
      assert.deepEqual(raw.closed, { code: 4409, reason: "Subscriber for a already exists" });
    } finally {
      await raw.close();
    }
    await released();
  });

  test("completed by the client while it starts or replays (before it is detached): released all the same", async () => {
    const raw = await connectRawWs(server.wsUrl, server.userToken);
    try {
      const job = await createJob(server.userToken);
      for (let i = 0; i < 4; i++) await flip(job, server.userToken, i % 2 ? "suspendJob" : "resumeJob");
      // Completed at once: the complete reaches the server while the subscription is still starting.
      raw.send({ id: "r", type: "subscribe", payload: { query: SUB, variables: { jobId: job, after: "0" } } });
      raw.send({ id: "r", type: "complete" });
      // Completed after its first replayed event.
      raw.send({ id: "p", type: "subscribe", payload: { query: SUB, variables: { jobId: job, after: "0" } } });
      await raw.until((m) => m.some((x) => x.id === "p" && x.type === "next"), "p's first replayed event");
      raw.send({ id: "p", type: "complete" });
      // A live one on the same socket, through an event (by then r has long finished starting).
      raw.send({ id: "s", type: "subscribe", payload: { query: SUB, variables: { jobId: job } } });
      await waitFor(() => server.app.feed.subscriberCount >= 1, "s registered");
      await flip(job, server.userToken, "resumeJob");
      await raw.until((m) => m.some((x) => x.id === "s" && x.type === "next"), "s receives an event");
      raw.send({ id: "s", type: "complete" });
      await released();
      assert.equal(raw.messages.filter((x) => x.id === "r").length, 0, "nothing for r");
      assert.equal(raw.closed, null);
    } finally {
      await raw.close();
    }
  });
});

describe("two subscriptions of one document on one socket (the dashboard: all jobs + one job's history)", () => {
  test("the per-job subscription with after: \"0\" gets every transition of its job, live ones included", async () => {
    const ws = await connectWs(server.wsUrl);
    try {
      const all = ws.subscribe<Data>(SUB, {});
      const id = await createJob(server.userToken);
      await waitFor(() => all.events.data.some((d) => d.jobStateChanged.job.id === id), "the all-jobs subscription saw the creation");
      const one = ws.subscribe<Data>(SUB, { jobId: id, after: "0" });
      await waitFor(() => one.events.data.length >= 1, "the history replayed");
      for (const op of ["resumeJob", "suspendJob", "resumeJob", "suspendJob"] as const) {
        await flip(id, server.userToken, op);
      }
      const expected = ["SUSPENDED", "QUEUED", "SUSPENDED", "QUEUED", "SUSPENDED"];
      await waitFor(() => one.events.data.length >= expected.length, `5 events for the job: ${JSON.stringify(one.events.data.map((d) => d.jobStateChanged.state))}`);
      assert.deepEqual(one.events.data.map((d) => d.jobStateChanged.state), expected);
      const mine = all.events.data.filter((d) => d.jobStateChanged.job.id === id).map((d) => d.jobStateChanged.state);
      await waitFor(() => all.events.data.filter((d) => d.jobStateChanged.job.id === id).length >= 5, "the all-jobs subscription got them too");
      assert.deepEqual(all.events.data.filter((d) => d.jobStateChanged.job.id === id).map((d) => d.jobStateChanged.state), expected, JSON.stringify(mine));
      all.unsubscribe();
      one.unsubscribe();
    } finally {
      await ws.dispose();
    }
  });
});

test("the feed's reads come back in seq order across digit boundaries (9 -> 10 -> 100), live and replayed", async () => {
  const id = await createJob(server.userToken);
  for (let i = 0; i < 6; i++) await flip(id, server.userToken, i % 2 ? "suspendJob" : "resumeJob");
  const { readEventsDirect } = await import("../../src/store/events.js");
  const rows = await readEventsDirect(server.db, { after: 0n, limit: 1000 });
  assert.ok(rows.length >= 11, `${rows.length} events`);
  for (let i = 1; i < rows.length; i++) assert.ok(rows[i]!.seq > rows[i - 1]!.seq, `seq ${rows[i]!.seq} after ${rows[i - 1]!.seq}`);
  // A replay from "0" of this job: every event, in order.
  const ws = await connectWs(server.wsUrl);
  try {
    const one = ws.subscribe<Data>(SUB, { jobId: id, after: "0" });
    await waitFor(() => one.events.data.length >= 7, "7 events replayed");
    const cursors = one.events.data.map((d) => BigInt(d.jobStateChanged.cursor));
    for (let i = 1; i < cursors.length; i++) assert.ok(cursors[i]! > cursors[i - 1]!, `cursor ${cursors[i]} after ${cursors[i - 1]}`);
    assert.deepEqual(one.events.data.map((d) => d.jobStateChanged.state), ["SUSPENDED", "QUEUED", "SUSPENDED", "QUEUED", "SUSPENDED", "QUEUED", "SUSPENDED"]);
    one.unsubscribe();
  } finally {
    await ws.dispose();
  }
});
