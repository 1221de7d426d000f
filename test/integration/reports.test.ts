/**
 * The worker's group commit (src/jobs/reports.ts) through the driver transaction: reports of several
 * jobs share one transaction; a lazy report (a finished file nobody waits for) is taken along by the
 * next urgent one, or by `hurry`, instead of costing a transaction of its own; a stale lease writes
 * nothing; the rows and events written are what the model API reads. On Postgres and on PGlite.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { openDatabase, type Database } from "../../src/store/db.js";
import { createReports, LeaseLostError } from "../../src/jobs/reports.js";
import { createTestDatabase } from "../helpers/db.js";

async function setup(db: Database, n: number) {
  const ids: { job: string; file: string }[] = [];
  for (let i = 0; i < n; i++) {
    const job = randomUUID();
    const file = randomUUID();
    await db.prisma.job.create({ data: { id: job, type: "DOWNLOAD", displayName: `r${i}`, owner: "erin", state: "QUEUED", filesTotal: 1 } });
    await db.prisma.file.create({ data: { id: file, jobId: job, position: 0, remoteUrl: "http://127.0.0.1:9/x", localPath: `r/${i}.bin` } });
    ids.push({ job, file });
  }
  return ids;
}

async function scenario(db: Database, scripts: string[]): Promise<void> {
  const seqs: bigint[] = [];
  const reports = createReports({ db, afterCommit: (s) => seqs.push(s) });
  const ids = await setup(db, 3);
  const claimed = await reports.claim("test:1:a", 30, [{ limit: 3, maxPriorityRank: 3 }]);
  assert.equal(claimed.length, 3);
  const lease = (job: string) => claimed.find((c) => c.job.id === job)!.lease;
  const [a, b, c] = ids as [(typeof ids)[0], (typeof ids)[0], (typeof ids)[0]];

  // CONNECTED for all three (urgent, concurrent): one transaction for the three.
  scripts.length = 0;
  const connected = await Promise.all(ids.map((x) => reports.report(x.job, lease(x.job), { events: [{ type: "CONNECTED" }] })));
  assert.deepEqual(connected.map((j) => j.state), ["TRANSFERRING", "TRANSFERRING", "TRANSFERRING"]);
  assert.ok(seqs.length >= 1, "afterCommit got the seq of the appended events");
  const flushesOf = (job: string) => scripts.filter((s) => s.includes(job) && s.includes("FOR UPDATE")).length;

  // A lazy report, then an urgent one of another job: they share one transaction.
  scripts.length = 0;
  const lazy = reports.report(a.job, lease(a.job), { files: [{ id: a.file, bytesTransferred: 10n, bytesTotal: 10n, transferred: true }], lazy: true });
  const urgent = reports.report(b.job, lease(b.job), { events: [{ type: "PROGRESS" }], files: [{ id: b.file, bytesTransferred: 5n, bytesTotal: 20n }] });
  const [ja, jb] = await Promise.all([lazy, urgent]);
  assert.equal(ja.filesTransferred, 1);
  assert.equal(ja.bytesTransferred, 10n);
  assert.equal(jb.bytesTransferred, 5n);
  assert.equal(jb.bytesTotal, 20n);
  const both = scripts.filter((s) => s.includes("FOR UPDATE"));
  assert.equal(both.length, 1, "one group commit for the lazy and the urgent report");
  assert.ok(both[0]!.includes(a.job) && both[0]!.includes(b.job));

  // hurry() sends a lazy report now; a lazy report alone is committed all the same.
  scripts.length = 0;
  const hurried = reports.report(c.job, lease(c.job), { files: [{ id: c.file, bytesTransferred: 3n }], lazy: true });
  reports.hurry(c.job);
  assert.equal((await hurried).bytesTransferred, 3n);
  assert.equal(flushesOf(c.job), 1);
  assert.equal((await reports.report(c.job, lease(c.job), { files: [{ id: c.file, bytesTransferred: 4n }], lazy: true })).bytesTransferred, 4n);

  // The last report: ALL_FILES_DONE and the lease back, in the same write.
  const done = await reports.report(a.job, lease(a.job), { events: [{ type: "PROGRESS" }, { type: "ALL_FILES_DONE" }], release: true });
  assert.equal(done.state, "TRANSFERRED");
  assert.equal(done.leaseHolder, null);
  assert.ok(done.transferCompletedAt instanceof Date);
  // A stale lease (released above) writes nothing, even batched with a valid report.
  const [stale, valid] = await Promise.allSettled([
    reports.report(a.job, lease(a.job), { files: [{ id: a.file, bytesTransferred: 1n }] }),
    reports.report(b.job, lease(b.job), { files: [{ id: b.file, bytesTransferred: 6n }] }),
  ]);
  assert.ok(stale.status === "rejected" && stale.reason instanceof LeaseLostError);
  assert.ok(valid.status === "fulfilled" && valid.value.bytesTransferred === 6n);

  // What the model API reads is what the reports returned; the event log has each transition once, in order.
  const rows = await db.prisma.job.findMany({ where: { id: { in: ids.map((x) => x.job) } } });
  const byId = new Map(rows.map((r) => [r.id, r]));
  assert.deepEqual(byId.get(a.job), done);
  assert.equal((await db.prisma.file.findUnique({ where: { id: a.file } }))!.bytesTransferred, 10n, "the stale report did not write the file row");
  const events = await db.prisma.jobEvent.findMany({ where: { jobId: a.job }, orderBy: { seq: "asc" } });
  assert.deepEqual(
    events.map((e) => e.state),
    ["CONNECTING", "TRANSFERRING", "TRANSFERRED"],
  );
  assert.equal((events[2]!.data as { job: { state: string } }).job.state, "TRANSFERRED", "the event carries the row as written");
  assert.equal(seqs[seqs.length - 1], events[2]!.seq, "afterCommit named the highest seq");
}

test("group commit through the driver: shared transactions, lazy reports, fencing (Postgres)", async () => {
  const t = await createTestDatabase();
  const scripts: string[] = [];
  const db = await openDatabase({ databaseUrl: t.url, dataDir: "", migrate: false, onQuery: (q) => scripts.push(q) });
  try {
    await scenario(db, scripts);
  } finally {
    await db.close();
    await t.drop();
  }
});

test("group commit through the driver: shared transactions, lazy reports, fencing (embedded PGlite)", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "haul-reports-"));
  const scripts: string[] = [];
  const db = await openDatabase({ databaseUrl: null, dataDir: dir, onQuery: (q) => scripts.push(q) });
  try {
    await scenario(db, scripts);
  } finally {
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
