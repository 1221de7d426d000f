// The GraphQL control plane end to end: real server, real Postgres (a fresh clone per file).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { startServer, gql, ok, codeOf, type TestServer } from "../helpers/server.js";
import { setDefaultToken } from "../helpers/auth.js";

let s: Awaited<ReturnType<typeof startServer>>;
let url: string;

before(async () => {
  s = await startServer();
  url = s.graphqlUrl;
});
after(async () => {
  await s?.close();
});

const JOB_FIELDS = `id displayName description type priority state owner errorCount minimumRetryDelay noProgressTimeout
  progress { bytesTotal bytesTransferred filesTotal filesTransferred }
  times { createdAt modifiedAt transferCompletedAt }
  error { code message context }
  files { totalCount edges { node { id remoteUrl localPath bytesTotal bytesTransferred completed } } }`;

async function createJob(input: Record<string, unknown>) {
  return gql(url, `mutation($input: CreateJobInput!) { createJob(input: $input) { job { ${JOB_FIELDS} } warnings } }`, { input });
}

// Two unfinished jobs may not share a destination: every call gets its own directory.
let batch = 0;
function files(n: number, base = "f") {
  const prefix = batch++ === 0 ? base : `${base}${batch}`;
  return Array.from({ length: n }, (_, i) => ({ remoteUrl: `http://127.0.0.1:9/${prefix}${i}.bin`, localPath: `${prefix}/${i}.bin` }));
}

async function call(mutation: string, id: string) {
  return gql(url, `mutation($id: ID!) { ${mutation}(id: $id) { job { id state } warnings } }`, { id });
}

async function eventCount(): Promise<number> {
  return s.db.prisma.jobEvent.count();
}

test("createJob: a new job starts SUSPENDED with BITS defaults", async () => {
  const r = await createJob({ displayName: "nightly", files: files(2) });
  assert.equal(r.errors, undefined);
  const job = r.data.createJob.job;
  assert.equal(job.state, "SUSPENDED");
  assert.equal(job.priority, "NORMAL");
  assert.equal(job.type, "DOWNLOAD");
  assert.equal(job.minimumRetryDelay, 600);
  assert.equal(job.noProgressTimeout, 1_209_600);
  assert.equal(job.errorCount, 0);
  assert.equal(job.error, null);
  assert.equal(job.owner, "local");
  assert.equal(job.description, "");
  assert.deepEqual(job.progress, { bytesTotal: null, bytesTransferred: "0", filesTotal: 2, filesTransferred: 0 });
  assert.equal(job.times.transferCompletedAt, null);
  assert.match(job.times.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(job.files.totalCount, 2);
  assert.deepEqual(
    job.files.edges.map((e: any) => e.node.localPath),
    ["f/0.bin", "f/1.bin"],
  );
});

test("the BITS life cycle through the API: EMPTY, resume, no-ops, suspend, cancel, then INVALID_STATE", async () => {
  const empty = (await createJob({ displayName: "empty" })).data.createJob.job;
  const r1 = await call("resumeJob", empty.id);
  assert.equal(codeOf(r1), "EMPTY");
  assert.match(r1.errors![0]!.message, /add at least one file/i);
  assert.equal((await ok(url, `query($id: ID!) { job(id: $id) { state } }`, { id: empty.id })).job.state, "SUSPENDED");

  const added = await ok(url, `mutation($id: ID!, $f: [FileInput!]!) { addFiles(jobId: $id, files: $f) { job { state progress { filesTotal } } } }`, {
    id: empty.id,
    f: files(1),
  });
  assert.deepEqual(added.addFiles.job, { state: "SUSPENDED", progress: { filesTotal: 1 } });

  assert.equal((await call("resumeJob", empty.id)).data.resumeJob.job.state, "QUEUED");
  const before = await eventCount();
  assert.equal((await call("resumeJob", empty.id)).data.resumeJob.job.state, "QUEUED", "resume in an action state is a no-op");
  assert.equal(await eventCount(), before, "a no-op writes no event");
  assert.equal((await call("suspendJob", empty.id)).data.suspendJob.job.state, "SUSPENDED");
  assert.equal((await call("suspendJob", empty.id)).data.suspendJob.job.state, "SUSPENDED", "suspend of a suspended job is a no-op");
  assert.equal((await call("cancelJob", empty.id)).data.cancelJob.job.state, "CANCELLED");

  for (const m of ["suspendJob", "resumeJob", "completeJob", "cancelJob"]) {
    const r = await call(m, empty.id);
    assert.equal(codeOf(r), "INVALID_STATE", m);
  }
  const upd = await gql(url, `mutation($id: ID!) { updateJob(id: $id, input: { displayName: "x" }) { job { id } } }`, { id: empty.id });
  assert.equal(codeOf(upd), "INVALID_STATE");
  const add = await gql(url, `mutation($id: ID!, $f: [FileInput!]!) { addFiles(jobId: $id, files: $f) { job { id } } }`, { id: empty.id, f: files(1, "g") });
  assert.equal(codeOf(add), "INVALID_STATE");
  assert.equal((await ok(url, `query($id: ID!) { job(id: $id) { state } }`, { id: empty.id })).job.state, "CANCELLED");
});

test("completeJob of a job with nothing transferred is a partial complete (BITS BG_S_PARTIAL_COMPLETE)", async () => {
  const job = (await createJob({ displayName: "c", files: files(1) })).data.createJob.job;
  const r = await call("completeJob", job.id);
  assert.equal(r.data.completeJob.job.state, "ACKNOWLEDGED");
  assert.deepEqual(r.data.completeJob.warnings, ["PARTIAL_COMPLETE"]);
});

test("updateJob sets properties; retry delays below the floor are clamped to 5 s, as BITS does", async () => {
  const job = (await createJob({ displayName: "u", files: files(1) })).data.createJob.job;
  const r = await ok(
    url,
    `mutation($id: ID!) { updateJob(id: $id, input: { displayName: "renamed", description: "d", priority: HIGH, minimumRetryDelay: 1, noProgressTimeout: 0 }) {
      job { displayName description priority minimumRetryDelay noProgressTimeout state } } }`,
    { id: job.id },
  );
  assert.deepEqual(r.updateJob.job, {
    displayName: "renamed",
    description: "d",
    priority: "HIGH",
    minimumRetryDelay: 5,
    noProgressTimeout: 0,
    state: "SUSPENDED",
  });
  const uuid = Buffer.from(job.id, "base64").toString().split(":")[1]!;
  const events = await s.db.prisma.jobEvent.findMany({ where: { jobId: uuid }, orderBy: { seq: "asc" } });
  assert.deepEqual(
    events.map((e) => e.kind),
    ["CREATED", "PROPERTIES_CHANGED"],
  );
});

test("bad input is refused with BAD_USER_INPUT / TOO_MANY_FILES and changes nothing", async () => {
  const jobsBefore = await s.db.prisma.job.count();
  const eventsBefore = await eventCount();
  const cases: [Record<string, unknown>, string][] = [
    [{ displayName: "x".repeat(257) }, "BAD_USER_INPUT"],
    [{ displayName: "" }, "BAD_USER_INPUT"],
    [{ displayName: "ok", description: "d".repeat(1025) }, "BAD_USER_INPUT"],
    [{ displayName: "ok", files: [{ remoteUrl: "http://127.0.0.1/" + "a".repeat(2200), localPath: "a" }] }, "BAD_USER_INPUT"],
    [{ displayName: "ok", files: [{ remoteUrl: "ftp://127.0.0.1/a", localPath: "a" }] }, "BAD_USER_INPUT"],
    [{ displayName: "ok", files: [{ remoteUrl: "file:///etc/passwd", localPath: "a" }] }, "BAD_USER_INPUT"],
    [{ displayName: "ok", files: [{ remoteUrl: "not a url", localPath: "a" }] }, "BAD_USER_INPUT"],
    [{ displayName: "ok", files: [{ remoteUrl: "http://127.0.0.1/a", localPath: "../escape" }] }, "BAD_USER_INPUT"],
    [{ displayName: "ok", files: [{ remoteUrl: "http://127.0.0.1/a", localPath: "a/../../b" }] }, "BAD_USER_INPUT"],
    [{ displayName: "ok", files: [{ remoteUrl: "http://127.0.0.1/a", localPath: "/etc/passwd" }] }, "BAD_USER_INPUT"],
    [{ displayName: "ok", files: [{ remoteUrl: "http://127.0.0.1/a", localPath: "" }] }, "BAD_USER_INPUT"],
    [{ displayName: "ok", files: [{ remoteUrl: "http://127.0.0.1/a", localPath: "a\u0000b" }] }, "BAD_USER_INPUT"],
    [{ displayName: "ok", files: [{ remoteUrl: "http://127.0.0.1/a", localPath: "same" }, { remoteUrl: "http://127.0.0.1/b", localPath: "same" }] }, "BAD_USER_INPUT"],
    [{ displayName: "ok", minimumRetryDelay: -1 }, "BAD_USER_INPUT"],
    [{ displayName: "ok", noProgressTimeout: -5 }, "BAD_USER_INPUT"],
    [{ displayName: "ok", type: "UPLOAD" }, "BAD_USER_INPUT"],
    [{ displayName: "ok", priority: "URGENT" }, "BAD_USER_INPUT"],
    [{ displayName: "ok", files: files(201) }, "TOO_MANY_FILES"],
  ];
  for (const [input, code] of cases) {
    const r = await createJob(input);
    assert.equal(codeOf(r), code, `${JSON.stringify(input).slice(0, 120)} -> ${JSON.stringify(r.errors)}`);
    assert.ok(r.errors![0]!.message.length > 10, "the message says what is wrong");
  }
  assert.equal(await s.db.prisma.job.count(), jobsBefore);
  assert.equal(await eventCount(), eventsBefore);
});

test("ids: malformed is BAD_USER_INPUT, unknown is NOT_FOUND for mutations and null for job(); node() and bare UUIDs work", async () => {
  assert.equal(codeOf(await call("resumeJob", "garbage!")), "BAD_USER_INPUT");
  assert.equal(codeOf(await call("resumeJob", randomUUID())), "NOT_FOUND");
  const missing = await gql(url, `query($id: ID!) { job(id: $id) { id } }`, { id: randomUUID() });
  assert.equal(missing.errors, undefined);
  assert.equal(missing.data.job, null);

  const job = (await createJob({ displayName: "n", files: files(1) })).data.createJob.job;
  const node = await ok(url, `query($id: ID!) { node(id: $id) { id ... on Job { displayName } } }`, { id: job.id });
  assert.deepEqual(node.node, { id: job.id, displayName: "n" });
  const fileId = job.files.edges[0].node.id;
  const fnode = await ok(url, `query($id: ID!) { node(id: $id) { ... on File { localPath job { id } } } }`, { id: fileId });
  assert.deepEqual(fnode.node, { localPath: job.files.edges[0].node.localPath, job: { id: job.id } });
  const uuid = Buffer.from(job.id, "base64").toString().split(":")[1];
  const byUuid = await ok(url, `query($id: ID!) { job(id: $id) { id } }`, { id: uuid });
  assert.equal(byUuid.job.id, job.id);
});

test("byte counts stay exact past 2^32 and 2^53", async () => {
  const job = (await createJob({ displayName: "big", files: files(1) })).data.createJob.job;
  const uuid = Buffer.from(job.id, "base64").toString().split(":")[1]!;
  const huge = 9_007_199_254_740_993n; // 2^53 + 1: not representable as a JS number
  await s.db.prisma.file.updateMany({ where: { jobId: uuid }, data: { bytesTotal: huge, bytesTransferred: 5_000_000_000n } });
  await s.db.prisma.job.update({ where: { id: uuid }, data: { bytesTotal: huge, bytesTransferred: 5_000_000_000n } });
  const r = await ok(url, `query($id: ID!) { job(id: $id) { progress { bytesTotal bytesTransferred } files { edges { node { bytesTotal bytesTransferred } } } } }`, {
    id: job.id,
  });
  assert.deepEqual(r.job.progress, { bytesTotal: "9007199254740993", bytesTransferred: "5000000000" });
  assert.deepEqual(r.job.files.edges[0].node, { bytesTotal: "9007199254740993", bytesTransferred: "5000000000" });
});

test("concurrent calls on one job lose no update and skip no event", async () => {
  const job = (await createJob({ displayName: "race", files: files(1) })).data.createJob.job;
  const uuid = Buffer.from(job.id, "base64").toString().split(":")[1]!;
  const calls = Array.from({ length: 40 }, (_, i) => call(i % 2 ? "suspendJob" : "resumeJob", job.id));
  const results = await Promise.all(calls);
  for (const r of results) assert.equal(r.errors, undefined, JSON.stringify(r.errors));
  const events = await s.db.prisma.jobEvent.findMany({ where: { jobId: uuid }, orderBy: { seq: "asc" } });
  // Each event's previousState is the state the one before it left: a complete, ordered chain.
  for (let i = 1; i < events.length; i++) assert.equal(events[i]!.previousState, events[i - 1]!.state, `event ${i}`);
  const row = await s.db.prisma.job.findUniqueOrThrow({ where: { id: uuid } });
  assert.equal(row.state, events[events.length - 1]!.state);
  assert.equal(row.version, events.length - 1, "one version bump per logged transition");
});

test("jobs(): cursor pagination with totalCount and state filters; finished jobs are left out unless asked for", async () => {
  const owner = "local";
  const created: string[] = [];
  for (let i = 0; i < 7; i++) created.push((await createJob({ displayName: `page-${i}`, files: files(1) })).data.createJob.job.id);
  await call("resumeJob", created[0]!);
  await call("cancelJob", created[1]!);

  const all = await ok(url, `{ jobs(first: 200) { totalCount edges { node { id state } } } }`);
  assert.ok(all.jobs.edges.every((e: any) => !["CANCELLED", "ACKNOWLEDGED"].includes(e.node.state)));
  assert.equal(all.jobs.totalCount, all.jobs.edges.length);

  const seen: string[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 50; page++) {
    const r: any = await ok(url, `query($after: String) { jobs(first: 3, after: $after, filter: { owner: "${owner}", states: [SUSPENDED] }) {
      totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id state } } } }`, { after: cursor });
    for (const e of r.jobs.edges) {
      assert.equal(e.node.state, "SUSPENDED");
      seen.push(e.node.id);
    }
    if (!r.jobs.pageInfo.hasNextPage) {
      assert.equal(seen.length, r.jobs.totalCount);
      break;
    }
    cursor = r.jobs.pageInfo.endCursor;
  }
  assert.equal(new Set(seen).size, seen.length, "no job twice");
  for (const id of created.slice(2)) assert.ok(seen.includes(id));
  assert.ok(!seen.includes(created[0]!) && !seen.includes(created[1]!));

  const cancelled = await ok(url, `{ jobs(filter: { states: [CANCELLED] }) { edges { node { id } } } }`);
  assert.ok(cancelled.jobs.edges.some((e: any) => e.node.id === created[1]));
});

test("a page of jobs with their files costs a constant number of SQL statements", async () => {
  const counter = { n: 0 };
  const log: string[] = [];
  const counted = await startServer({ database: s.database, onQuery: (q) => {
    // The event feed's background reads of job_event are not part of the request.
    if (/FROM ("public"\.)?"?job_event"?\b/.test(q)) return;
    counter.n++;
    log.push(q);
  } });
  setDefaultToken(counted.url, counted.adminToken); // 55 jobs: more than a USER's quota of 60 allows here
  try {
    for (let i = 0; i < 55; i++) {
      const r = await gql(counted.graphqlUrl, `mutation($input: CreateJobInput!) { createJob(input: $input) { job { id } } }`, {
        input: { displayName: `sql-${i}`, files: files(3, `sql${i}`) },
      });
      assert.equal(r.errors, undefined);
    }
    const query = (n: number) => `{ jobs(first: ${n}, filter: { states: [SUSPENDED] }) { totalCount edges { cursor node { ${JOB_FIELDS} } } } }`;
    const measure = async (n: number) => {
      counter.n = 0;
      log.length = 0;
      const r = await ok(counted.graphqlUrl, query(n));
      if (process.env.HAUL_TEST_SQL) console.log(log.join("\n"));
      assert.equal(r.jobs.edges.length, n);
      for (const e of r.jobs.edges) assert.ok(e.node.files.edges.length >= 1);
      return counter.n;
    };
    await ok(counted.graphqlUrl, `{ viewer { user } }`); // the token is looked up once, then cached
    await new Promise((r) => setTimeout(r, 100));
    const for5 = await measure(5);
    const for50 = await measure(50);
    console.log(`# SQL statements: page of 5 jobs with files = ${for5}, page of 50 jobs x 3 files = ${for50}`);
    assert.ok(for50 <= 4, `a page of 50 jobs took ${for50} statements`);
    assert.equal(for50, for5, "the count does not grow with the page size");
  } finally {
    await counted.close();
  }
});

test("unexpected errors are masked: no SQL, no stack, a correlation id", async () => {
  const other = await startServer();
  try {
    await other.db.prisma.$executeRawUnsafe(`ALTER TABLE job RENAME TO job_gone`);
    const r = await gql(other.graphqlUrl, `{ jobs { totalCount } }`);
    assert.equal(codeOf(r), "INTERNAL");
    assert.equal(r.errors![0]!.message, "Unexpected error.");
    assert.match(String(r.errors![0]!.extensions!.correlationId), /^[0-9a-f-]{36}$/);
    const text = JSON.stringify(r);
    assert.ok(!/job_gone|\brelation\b|SELECT|at .*\.ts/.test(text), text);
  } finally {
    await other.close();
  }
});

test("GraphQL syntax and validation errors carry a code", async () => {
  const r1 = await gql(url, `{ jobs { `);
  assert.ok(codeOf(r1), JSON.stringify(r1));
  const r2 = await gql(url, `{ nope }`);
  assert.ok(codeOf(r2), JSON.stringify(r2));
  const r3 = await gql(url, `mutation($id: ID!) { resumeJob(id: $id) { job { id } } }`, {});
  assert.ok(codeOf(r3), JSON.stringify(r3));
});
