// Batch mutations (createJobs, suspendJobs, resumeJobs, completeJobs, cancelJobs) and the worker's
// group commit of reports: the correctness side of the batching issue 6 asks for. Every answer of a
// batch call must equal what the single call would answer, per id; nothing in a refused createJobs
// is kept; many concurrent transfers still log every transition of every job, in order, once.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { createHash, randomUUID } from "node:crypto";
import { startServer, gql, ok, codeOf } from "../helpers/server.js";
import { startOrigin, type Origin } from "../helpers/origin.js";
import { act, createJob, jobStatus, waitForState } from "../helpers/jobs.js";

let s: Awaited<ReturnType<typeof startServer>>;
let o: Origin;
let url: string;

before(async () => {
  s = await startServer({ worker: { maxTransfers: 16 }, retryDelayFloorSeconds: 0, maxJobsPerUser: 200 });
  url = s.graphqlUrl;
  o = await startOrigin();
});
after(async () => {
  await s?.close();
  await o?.close();
});

const CREATE_MANY = `mutation($input: [CreateJobInput!]!, $resume: Boolean) { createJobs(input: $input, resume: $resume) { job { id state owner } } }`;
const many = (call: string) => `mutation($ids: [ID!]!) { ${call}(ids: $ids) { job { id state } warnings } }`;
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

async function jobCount(): Promise<number> {
  return s.db.prisma.job.count();
}

async function events(jobUuid: string): Promise<{ seq: bigint; kind: string; previousState: string | null; state: string }[]> {
  return s.db.prisma.jobEvent.findMany({ where: { jobId: jobUuid }, orderBy: { seq: "asc" }, select: { seq: true, kind: true, previousState: true, state: true } });
}

const uuidOf = (globalId: string) => Buffer.from(globalId, "base64").toString().split(":")[1]!;

test("createJobs with resume: every job QUEUED, CREATED (SUSPENDED) then SUSPENDED -> QUEUED logged for each", async () => {
  const r = await ok(url, CREATE_MANY, {
    resume: true,
    input: [0, 1, 2].map((i) => ({ displayName: `b${i}`, files: [{ remoteUrl: o.urlFor(`/none/${i}`), localPath: `cm/${i}.bin` }] })),
  });
  assert.equal(r.createJobs.length, 3);
  for (const { job } of r.createJobs) {
    assert.ok(["QUEUED", "CONNECTING", "TRANSFERRING", "TRANSIENT_ERROR", "ERROR"].includes(job.state), job.state);
    assert.equal(job.owner, "local");
    const ev = await events(uuidOf(job.id));
    assert.deepEqual(
      ev.slice(0, 2).map((e) => [e.kind, e.previousState, e.state]),
      [
        ["CREATED", null, "SUSPENDED"],
        ["STATE_CHANGED", "SUSPENDED", "QUEUED"],
      ],
    );
  }
  await ok(url, many("cancelJobs"), { ids: r.createJobs.map((x: any) => x.job.id) });
});

test("createJobs is all or nothing: one bad input refuses the call, names its index, and creates nothing", async () => {
  const before = await jobCount();
  const r = await gql(url, CREATE_MANY, {
    input: [
      { displayName: "fine", files: [{ remoteUrl: o.urlFor("/x"), localPath: "aon/a.bin" }] },
      { displayName: "bad", files: [{ remoteUrl: "ftp://example.invalid/x", localPath: "aon/b.bin" }] },
    ],
  });
  assert.equal(codeOf(r), "BAD_USER_INPUT", JSON.stringify(r));
  assert.match(r.errors![0]!.message, /input\[1\]/);
  assert.equal(await jobCount(), before);
  // Two files of one call with the same destination: refused too.
  const dup = await gql(url, CREATE_MANY, {
    input: [
      { displayName: "a", files: [{ remoteUrl: o.urlFor("/x"), localPath: "aon/same.bin" }] },
      { displayName: "b", files: [{ remoteUrl: o.urlFor("/y"), localPath: "aon/same.bin" }] },
    ],
  });
  assert.equal(codeOf(dup), "BAD_USER_INPUT");
  assert.equal(await jobCount(), before);
  // resume of a job with no files: EMPTY, as resumeJob, and nothing is kept.
  const empty = await gql(url, CREATE_MANY, { resume: true, input: [{ displayName: "nofiles" }] });
  assert.equal(codeOf(empty), "EMPTY");
  assert.equal(await jobCount(), before);
});

test("createJobs counts against the per-user quota as a whole", async () => {
  const q = await startServer({ database: s.database, maxJobsPerUser: 3 });
  try {
    const unfinished = await q.db.prisma.job.count({ where: { owner: "local", state: { notIn: ["ACKNOWLEDGED", "CANCELLED"] } } });
    const room = Math.max(0, 3 - unfinished);
    const before = await jobCount();
    const r = await gql(q.graphqlUrl, CREATE_MANY, { input: Array.from({ length: room + 1 }, (_, i) => ({ displayName: `q${i}` })) });
    assert.equal(codeOf(r), "TOO_MANY_JOBS", JSON.stringify(r));
    assert.equal(await jobCount(), before);
  } finally {
    await q.close();
  }
});

test("state calls answer per id, in order, with the single call's code and message", async () => {
  const a = await createJob(url, [{ remoteUrl: o.urlFor("/p/a"), localPath: "per/a.bin" }]);
  const empty = await createJob(url, []);
  const missing = randomUUID();
  const other = (await ok(url, `mutation { createJob(input: { displayName: "admin's" }) { job { id } } }`, {}, s.adminToken)).createJob.job.id;
  const ids = [a, missing, "not-an-id", other, empty, a];
  const r = await gql(url, many("resumeJobs"), { ids });
  const out = r.data.resumeJobs;
  assert.equal(out.length, ids.length);
  assert.equal(out[0].job.state, "QUEUED");
  assert.equal(out[5].job.state, "QUEUED", "the same id twice: both answered with the job");
  for (const i of [1, 2, 3, 4]) assert.equal(out[i], null, `item ${i}`);
  const byIndex = new Map(r.errors!.map((e) => [e.path![1] as unknown as number, e]));
  assert.deepEqual([...byIndex.keys()].sort(), [1, 2, 3, 4]);
  for (const [i, e] of byIndex) assert.deepEqual(e.path, ["resumeJobs", i]);
  // Same code and message as the single call.
  for (const i of [1, 2, 3, 4]) {
    const single = await act(url, "resumeJob", ids[i]!);
    assert.equal(byIndex.get(i)!.extensions?.code, codeOf(single), `item ${i}`);
    assert.equal(byIndex.get(i)!.message, single.errors![0]!.message, `item ${i}`);
  }
  assert.equal(byIndex.get(3)!.extensions?.code, "NOT_FOUND", "another user's job is NOT_FOUND");
  assert.equal(byIndex.get(4)!.extensions?.code, "EMPTY");
  // The refused ones changed nothing; the admin's job is untouched.
  assert.equal((await ok(url, `query($id: ID!) { job(id: $id) { state } }`, { id: other }, s.adminToken)).job.state, "SUSPENDED");
  const susp = await ok(url, many("suspendJobs"), { ids: [a] });
  assert.equal(susp.suspendJobs[0].job.state, "SUSPENDED");
  await ok(url, many("cancelJobs"), { ids: [a, empty] });
  await ok(url, many("cancelJobs"), { ids: [other] }, s.adminToken);
});

test("many concurrent transfers (group commit): every job's transitions logged once, in order; completeJobs makes the files appear; cancelJobs removes temp files", async () => {
  const n = 40;
  for (let i = 0; i < n; i++) o.add({ path: `/gc/${i}.bin`, size: 4096 + i });
  const r = await ok(url, CREATE_MANY, {
    resume: true,
    input: Array.from({ length: n }, (_, i) => ({
      displayName: `gc ${i}`,
      files: [{ remoteUrl: o.urlFor(`/gc/${i}.bin`), localPath: `gc/${i}.bin`, sha256: o.sha256Of(`/gc/${i}.bin`) }],
    })),
  });
  const ids: string[] = r.createJobs.map((x: any) => x.job.id);
  for (const id of ids) assert.equal((await waitForState(url, id, ["TRANSFERRED", "ERROR"], 60_000)).state, "TRANSFERRED");
  const seqs: bigint[] = [];
  for (const id of ids) {
    const ev = await events(uuidOf(id));
    assert.deepEqual(
      ev.map((e) => e.state),
      ["SUSPENDED", "QUEUED", "CONNECTING", "TRANSFERRING", "TRANSFERRED"],
      `job ${id}: ${JSON.stringify(ev.map((e) => e.state))}`,
    );
    for (let i = 1; i < ev.length; i++) assert.equal(ev[i]!.previousState, ev[i - 1]!.state);
    seqs.push(...ev.map((e) => e.seq));
    const st = await jobStatus(url, id);
    assert.deepEqual(st.progress.filesTransferred, 1);
    assert.equal(st.progress.bytesTransferred, st.progress.bytesTotal);
  }
  assert.equal(new Set(seqs.map(String)).size, seqs.length, "no event twice");
  // Complete half in one call (plus a cancelled one: INVALID_STATE for it alone).
  const pending = await createJob(url, [{ remoteUrl: o.urlFor("/gc/0.bin"), localPath: "gc/pending.bin" }]);
  await act(url, "cancelJob", pending);
  const half = ids.slice(0, n / 2);
  const c = await gql(url, many("completeJobs"), { ids: [...half, pending] });
  assert.equal(c.errors?.length, 1);
  assert.equal(c.errors![0]!.extensions?.code, "INVALID_STATE");
  assert.deepEqual(c.errors![0]!.path, ["completeJobs", half.length]);
  half.forEach((_, i) => assert.equal(c.data.completeJobs[i].job.state, "ACKNOWLEDGED"));
  // Logged as completeJob logs it: how many files became visible.
  const ack = await s.db.prisma.jobEvent.findFirstOrThrow({ where: { jobId: uuidOf(half[0]!), state: "ACKNOWLEDGED" } });
  assert.equal((ack.data as { filesCompleted?: number }).filesCompleted, 1);
  for (let i = 0; i < n / 2; i++) {
    assert.equal(sha(fs.readFileSync(path.join(s.filesRoot, `gc/${i}.bin`))), o.sha256Of(`/gc/${i}.bin`));
  }
  // Cancel the other half: their temporary files go, no final file appears.
  const k = await ok(url, many("cancelJobs"), { ids: ids.slice(n / 2) });
  assert.ok(k.cancelJobs.every((x: any) => x.job.state === "CANCELLED"));
  for (let i = n / 2; i < n; i++) assert.ok(!fs.existsSync(path.join(s.filesRoot, `gc/${i}.bin`)));
  const leftovers = fs.readdirSync(path.join(s.filesRoot, "gc")).filter((f) => f.includes(".haul-part"));
  assert.deepEqual(leftovers, []);
});

test("a batch larger than the limit is refused whole", async () => {
  const r = await gql(url, many("resumeJobs"), { ids: Array.from({ length: 501 }, () => randomUUID()) });
  assert.equal(codeOf(r), "BAD_USER_INPUT");
  assert.match(r.errors![0]!.message, /at most 500/);
});

test("batch calls need a token, as the single ones", async () => {
  for (const q of [many("resumeJobs"), many("completeJobs")]) {
    const r = await gql(url, q, { ids: [randomUUID()] }, null);
    assert.equal(codeOf(r), "UNAUTHENTICATED");
  }
  const r = await gql(url, CREATE_MANY, { input: [{ displayName: "x" }] }, null);
  assert.equal(codeOf(r), "UNAUTHENTICATED");
});

test("a large createJobs (50 jobs x 200 files, 10,000 file rows: more bind parameters than one statement takes) is created whole", async () => {
  const before = await jobCount();
  const input = Array.from({ length: 50 }, (_, j) => ({
    displayName: `big ${j}`,
    files: Array.from({ length: 200 }, (_, i) => ({ remoteUrl: `http://127.0.0.1:9/b/${j}/${i}`, localPath: `big/${j}/${i}.bin` })),
  }));
  const r = await gql(url, `mutation($input: [CreateJobInput!]!) { createJobs(input: $input) { job { id progress { filesTotal } } } }`, { input });
  assert.equal(r.errors, undefined, JSON.stringify(r.errors));
  assert.equal(r.data.createJobs.length, 50);
  assert.ok(r.data.createJobs.every((x: any) => x.job.progress.filesTotal === 200));
  assert.equal(await jobCount(), before + 50);
  assert.equal(await s.db.prisma.file.count({ where: { localPath: { startsWith: "big/" } } }), 10_000);
  await ok(url, many("cancelJobs"), { ids: r.data.createJobs.map((x: any) => x.job.id) });
});
