// The transfer worker against a real loopback origin with faults.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { createHash } from "node:crypto";
import { startServer } from "../helpers/server.js";
import { startOrigin, type Origin } from "../helpers/origin.js";
import { act, createJob, jobStatus, waitFor, waitForState } from "../helpers/jobs.js";

let s: Awaited<ReturnType<typeof startServer>>;
let o: Origin;
let url: string;

before(async () => {
  s = await startServer({ worker: true, retryDelayFloorSeconds: 0 });
  url = s.graphqlUrl;
  o = await startOrigin();
});
after(async () => {
  await s?.close();
  await o?.close();
});

function sha(buf: Buffer): string {
  return createHash("sha256").update(buf).digest("hex");
}

function tempFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true }).map(String).filter((f) => f.includes(".haul-part"));
}

test("a job downloads, reaches TRANSFERRED, and its files appear only on completeJob", async () => {
  o.add({ path: "/ok/a.bin", size: 200_000 });
  o.add({ path: "/ok/b.bin", size: 0 });
  const id = await createJob(url, [
    { remoteUrl: o.urlFor("/ok/a.bin"), localPath: "ok/a.bin", sha256: o.sha256Of("/ok/a.bin") },
    { remoteUrl: o.urlFor("/ok/b.bin"), localPath: "ok/b.bin" },
  ]);
  await act(url, "resumeJob", id);
  const done = await waitForState(url, id, ["TRANSFERRED", "ERROR"]);
  assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
  assert.deepEqual(done.progress, { bytesTotal: "200000", bytesTransferred: "200000", filesTotal: 2, filesTransferred: 2 });
  assert.ok(done.times.transferCompletedAt);
  assert.ok(!fs.existsSync(path.join(s.filesRoot, "ok/a.bin")));
  const r = await act(url, "completeJob", id);
  assert.equal(r.data.completeJob.job.state, "ACKNOWLEDGED");
  assert.equal(sha(fs.readFileSync(path.join(s.filesRoot, "ok/a.bin"))), o.sha256Of("/ok/a.bin"));
  assert.equal(fs.readFileSync(path.join(s.filesRoot, "ok/b.bin")).length, 0);
  assert.deepEqual(tempFiles(s.filesRoot), []);
  const events = await s.db.prisma.jobEvent.findMany({ where: { jobId: Buffer.from(id, "base64").toString().split(":")[1]! }, orderBy: { seq: "asc" } });
  assert.deepEqual(
    events.filter((e) => e.kind === "STATE_CHANGED" || e.kind === "CREATED").map((e) => e.state),
    ["SUSPENDED", "QUEUED", "CONNECTING", "TRANSFERRING", "TRANSFERRED", "ACKNOWLEDGED"],
  );
});

test("404 is fatal: ERROR with HTTP_404, REMOTE_FILE, the file named", async () => {
  const id = await createJob(url, [{ remoteUrl: o.urlFor("/missing.bin"), localPath: "m/missing.bin" }]);
  await act(url, "resumeJob", id);
  const st = await waitForState(url, id, ["ERROR", "TRANSIENT_ERROR", "TRANSFERRED"]);
  assert.equal(st.state, "ERROR");
  assert.equal(st.error.code, "HTTP_404");
  assert.equal(st.error.context, "REMOTE_FILE");
  assert.equal(st.error.httpStatus, 404);
  assert.equal(st.error.file.localPath, "m/missing.bin");
  assert.equal(st.errorCount, 1);
});

test("503 twice is transient: TRANSIENT_ERROR, retried after the delay, then TRANSFERRED", async () => {
  o.add({ path: "/flaky.bin", size: 50_000 });
  o.fault("/flaky.bin", { type: "status", status: 503, times: 2 });
  const id = await createJob(url, [{ remoteUrl: o.urlFor("/flaky.bin"), localPath: "f/flaky.bin" }], { minimumRetryDelay: 1 });
  await act(url, "resumeJob", id);
  const t = await waitForState(url, id, ["TRANSIENT_ERROR", "ERROR", "TRANSFERRED"]);
  assert.equal(t.state, "TRANSIENT_ERROR");
  assert.equal(t.error.code, "HTTP_503");
  assert.ok(t.retryAt);
  const done = await waitForState(url, id, ["TRANSFERRED", "ERROR"]);
  assert.equal(done.state, "TRANSFERRED");
  assert.equal(done.errorCount, 2);
  assert.equal(done.error, null, "the error goes once transferring starts again");
});

test("a reset mid-body resumes from the offset with Range + If-Range", async () => {
  o.add({ path: "/reset.bin", size: 2_000_000 });
  // Paced, so the client has read most of those bytes when the reset comes (a reset may make the
  // receiver drop what it has not read yet).
  o.fault("/reset.bin", { type: "rate", bytesPerSecond: 4_000_000 });
  o.fault("/reset.bin", { type: "reset", afterBytes: 700_000, times: 1 });
  const id = await createJob(url, [{ remoteUrl: o.urlFor("/reset.bin"), localPath: "r/reset.bin", sha256: o.sha256Of("/reset.bin") }], {
    minimumRetryDelay: 1,
  });
  await act(url, "resumeJob", id);
  const done = await waitForState(url, id, ["TRANSFERRED", "ERROR"]);
  assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
  const reqs = o.requests("/reset.bin");
  assert.equal(reqs.length, 2);
  assert.equal(reqs[0]!.range, null);
  assert.match(reqs[1]!.range ?? "", /^bytes=\d+-$/);
  assert.ok(reqs[1]!.ifRange, "If-Range sent on resume");
  const resumedAt = Number(/bytes=(\d+)-/.exec(reqs[1]!.range!)![1]);
  assert.ok(resumedAt > 0 && resumedAt <= 700_000, `resumed at ${resumedAt}`);
  assert.ok(o.bytesServed("/reset.bin") < 2_000_000 + 700_000 + 1);
  await act(url, "completeJob", id);
  assert.equal(sha(fs.readFileSync(path.join(s.filesRoot, "r/reset.bin"))), o.sha256Of("/reset.bin"));
});

test("suspend stops a running transfer within a second; resume continues from the offset", async () => {
  o.add({ path: "/slow.bin", size: 3_000_000 });
  o.fault("/slow.bin", { type: "rate", bytesPerSecond: 1_000_000 });
  const id = await createJob(url, [{ remoteUrl: o.urlFor("/slow.bin"), localPath: "s/slow.bin", sha256: o.sha256Of("/slow.bin") }]);
  await act(url, "resumeJob", id);
  await waitFor(url, id, (j) => j.state === "TRANSFERRING" && Number(j.progress.bytesTransferred) > 400_000, "bytes moving");
  const t0 = Date.now();
  assert.equal((await act(url, "suspendJob", id)).data.suspendJob.job.state, "SUSPENDED");
  // The origin stops sending within a second.
  const before = o.bytesServed("/slow.bin");
  await new Promise((r) => setTimeout(r, 1200));
  const mid = o.bytesServed("/slow.bin");
  await new Promise((r) => setTimeout(r, 800));
  assert.equal(o.bytesServed("/slow.bin"), mid, `the transfer stopped (suspended at ${Date.now() - t0} ms)`);
  assert.ok(mid - before < 1_300_000);
  const paused = await jobStatus(url, id);
  assert.equal(paused.state, "SUSPENDED");
  const offset = Number(paused.progress.bytesTransferred);
  assert.ok(offset > 0);
  o.clearFaults("/slow.bin");
  await act(url, "resumeJob", id);
  const done = await waitForState(url, id, ["TRANSFERRED", "ERROR"]);
  assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
  const last = o.requests("/slow.bin").at(-1)!;
  assert.match(last.range ?? "", /^bytes=\d+-$/, "resumed with a Range request");
  assert.ok(Number(/bytes=(\d+)-/.exec(last.range!)![1]) >= offset);
  await act(url, "completeJob", id);
  assert.equal(sha(fs.readFileSync(path.join(s.filesRoot, "s/slow.bin"))), o.sha256Of("/slow.bin"));
});

test("cancel mid-transfer stops it and leaves no temporary file", async () => {
  o.add({ path: "/cancel.bin", size: 3_000_000 });
  o.fault("/cancel.bin", { type: "rate", bytesPerSecond: 500_000 });
  const id = await createJob(url, [{ remoteUrl: o.urlFor("/cancel.bin"), localPath: "c/cancel.bin" }]);
  await act(url, "resumeJob", id);
  await waitFor(url, id, (j) => Number(j.progress.bytesTransferred) > 100_000, "bytes moving");
  assert.equal((await act(url, "cancelJob", id)).data.cancelJob.job.state, "CANCELLED");
  const deadline = Date.now() + 3000;
  while (tempFiles(path.join(s.filesRoot, "c")).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(tempFiles(path.join(s.filesRoot, "c")), []);
  assert.ok(!fs.existsSync(path.join(s.filesRoot, "c/cancel.bin")));
});

test("a changed remote version restarts the file from 0: never a mix of two versions", async () => {
  o.add({ path: "/v.bin", size: 1_500_000, seed: "v1" });
  o.fault("/v.bin", { type: "rate", bytesPerSecond: 4_000_000 }); // paced: see the reset test
  o.fault("/v.bin", { type: "reset", afterBytes: 500_000, times: 1 });
  const id = await createJob(url, [{ remoteUrl: o.urlFor("/v.bin"), localPath: "v/v.bin" }], { minimumRetryDelay: 2 });
  await act(url, "resumeJob", id);
  await waitForState(url, id, ["TRANSIENT_ERROR"]);
  o.change("/v.bin", { seed: "v2" });
  const done = await waitForState(url, id, ["TRANSFERRED", "ERROR"], 30_000);
  assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
  await act(url, "completeJob", id);
  assert.equal(sha(fs.readFileSync(path.join(s.filesRoot, "v/v.bin"))), o.sha256Of("/v.bin"));
  const last = o.requests("/v.bin").at(-1)!;
  assert.ok(last.range, "it asked to resume");
  assert.equal(last.status, 200, "If-Range failed: the whole new version came back");
});

test("a server without range support restarts from 0 on resume instead of failing", async () => {
  o.add({ path: "/norange.bin", size: 1_000_000 });
  o.fault("/norange.bin", { type: "noRange" });
  o.fault("/norange.bin", { type: "reset", afterBytes: 300_000, times: 1 });
  const id = await createJob(url, [{ remoteUrl: o.urlFor("/norange.bin"), localPath: "n/norange.bin", sha256: o.sha256Of("/norange.bin") }], {
    minimumRetryDelay: 1,
  });
  await act(url, "resumeJob", id);
  const done = await waitForState(url, id, ["TRANSFERRED", "ERROR"], 30_000);
  assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
  await act(url, "completeJob", id);
  assert.equal(sha(fs.readFileSync(path.join(s.filesRoot, "n/norange.bin"))), o.sha256Of("/norange.bin"));
});

test("a checksum mismatch is ERROR CHECKSUM_MISMATCH", async () => {
  o.add({ path: "/sum.bin", size: 10_000 });
  const id = await createJob(url, [{ remoteUrl: o.urlFor("/sum.bin"), localPath: "x/sum.bin", sha256: "0".repeat(64) }]);
  await act(url, "resumeJob", id);
  const st = await waitForState(url, id, ["ERROR", "TRANSFERRED", "TRANSIENT_ERROR"]);
  assert.equal(st.state, "ERROR");
  assert.equal(st.error.code, "CHECKSUM_MISMATCH");
});

test("complete after ERROR keeps the finished files and drops the partial ones", async () => {
  o.add({ path: "/p1.bin", size: 20_000 });
  const id = await createJob(url, [
    { remoteUrl: o.urlFor("/p1.bin"), localPath: "p/p1.bin" },
    { remoteUrl: o.urlFor("/p2-missing.bin"), localPath: "p/p2.bin" },
  ]);
  await act(url, "resumeJob", id);
  const st = await waitForState(url, id, ["ERROR", "TRANSFERRED"]);
  assert.equal(st.state, "ERROR");
  const r = await act(url, "completeJob", id);
  assert.equal(r.data.completeJob.job.state, "ACKNOWLEDGED");
  assert.deepEqual(r.data.completeJob.warnings, ["PARTIAL_COMPLETE"]);
  assert.ok(fs.existsSync(path.join(s.filesRoot, "p/p1.bin")));
  assert.ok(!fs.existsSync(path.join(s.filesRoot, "p/p2.bin")));
  assert.deepEqual(tempFiles(path.join(s.filesRoot, "p")), []);
});

test("a job of 24 small files over one keep-alive connection leaves no listener behind on the socket", async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on("warning", onWarning);
  try {
    const files = Array.from({ length: 24 }, (_, i) => {
      o.add({ path: `/ka/${i}.bin`, size: 2048 + i });
      return { remoteUrl: o.urlFor(`/ka/${i}.bin`), localPath: `ka/${i}.bin`, sha256: o.sha256Of(`/ka/${i}.bin`) };
    });
    const id = await createJob(url, files);
    await act(url, "resumeJob", id);
    const done = await waitForState(url, id, ["TRANSFERRED", "ERROR"], 30_000);
    assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(warnings.filter((w) => w.startsWith("MaxListenersExceededWarning")), []);
  } finally {
    process.off("warning", onWarning);
  }
});

test("12 jobs of 20 small files at once: each TRANSFERRED job has every file transferred, and completes whole", async () => {
  // A file's final report is committed while the job's next file is fetched (src/worker/worker.ts):
  // the job must still reach TRANSFERRED only after every one of its file rows says transferred.
  const ids: string[] = [];
  for (let j = 0; j < 12; j++) {
    const files = Array.from({ length: 20 }, (_, i) => {
      const p = `/many/${j}/${i}.bin`;
      o.add({ path: p, size: 4096 + i });
      return { remoteUrl: o.urlFor(p), localPath: `many/${j}/${i}.bin`, sha256: o.sha256Of(p) };
    });
    ids.push(await createJob(url, files));
  }
  const before = o.requests().length;
  await Promise.all(ids.map((id) => act(url, "resumeJob", id)));
  for (const id of ids) {
    const done = await waitForState(url, id, ["TRANSFERRED", "ERROR"], 60_000);
    assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
    assert.equal(done.progress.filesTransferred, 20, JSON.stringify(done.progress));
    const r = await act(url, "completeJob", id);
    assert.equal(r.data.completeJob.job.state, "ACKNOWLEDGED");
    assert.deepEqual(r.data.completeJob.warnings ?? [], [], `job ${id}`);
  }
  for (let j = 0; j < 12; j++) {
    for (let i = 0; i < 20; i++) assert.equal(sha(fs.readFileSync(path.join(s.filesRoot, `many/${j}/${i}.bin`))), o.sha256Of(`/many/${j}/${i}.bin`));
  }
  const gets = o.requests().slice(before).filter((r) => r.path.startsWith("/many/") && r.method === "GET");
  assert.equal(gets.length, 240, "every file fetched exactly once");
});
