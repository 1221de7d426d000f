// Crash safety and scheduling of the transfer worker, against a real loopback origin and real
// Postgres: kill -9 of a child haul process mid-transfer and restart, expired-lease reclaim by another
// process, the fencing token, priority pre-emption and FOREGROUND jobs, two workers sharing one
// database, and suspend/cancel sent to another process than the one transferring.
// Every wait is bounded; every child is killed and every origin/server closed in `finally`.
// Measured figures are printed as test diagnostics (`# ...` lines in the spec reporter).
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createHash } from "node:crypto";
import pg from "pg";
import { startServer, type TestServer } from "../helpers/server.js";
import { createTestDatabase, type TestDatabase } from "../helpers/db.js";
import { startOrigin, type Origin } from "../helpers/origin.js";
import { act, createJob, jobStatus, uuidOf, waitForState } from "../helpers/jobs.js";
import { waitFor } from "../helpers/subscribe.js";
import { startHaulChild, type HaulChild } from "../helpers/child.js";
import { createReports, LeaseLostError } from "../../src/jobs/reports.js";
import { FileStorage } from "../../src/files/storage.js";

const MiB = 1024 * 1024;

// ---- small helpers ------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

function sha256File(file: string): string {
  const h = createHash("sha256");
  const fd = fs.openSync(file, "r");
  try {
    const buf = Buffer.allocUnsafe(4 * MiB);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest("hex");
}

/** Temporary files (`.<name>.<id>.haul-part`, and take-over copies) under `dir`. */
function tempFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => f.includes(".haul-part"));
}

/** A plain pg connection for reading (and, in the fencing test, tampering with) the rows directly. */
async function connect(url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on("error", () => {}); // the database may be dropped under it at the end of a test; queries still reject
  await c.connect();
  return c;
}

async function one<T>(c: pg.Client, sql: string, params: unknown[] = []): Promise<T> {
  const r = await c.query(sql, params);
  return r.rows[0] as T;
}

async function fileBytes(c: pg.Client, jobUuid: string): Promise<bigint> {
  const r = await one<{ b: string }>(c, `SELECT bytes_transferred::text AS b FROM file WHERE job_id = $1::uuid ORDER BY position LIMIT 1`, [jobUuid]);
  return BigInt(r.b);
}

interface EventRow {
  seq: string;
  kind: string;
  previous_state: string | null;
  state: string;
  actor: string | null;
}

async function eventsOf(c: pg.Client, jobUuid: string): Promise<EventRow[]> {
  const r = await c.query(
    `SELECT seq::text AS seq, kind::text AS kind, previous_state::text AS previous_state, state::text AS state, actor
       FROM job_event WHERE job_id = $1::uuid ORDER BY job_event.seq`,
    [jobUuid],
  );
  return r.rows as EventRow[];
}

/** The states a job went through: CREATED's state, then every STATE_CHANGED's. */
function statePath(events: EventRow[]): string[] {
  return events.filter((e) => e.kind === "CREATED" || e.kind === "STATE_CHANGED").map((e) => e.state);
}

/** Samples `read()` every `everyMs` (wall clock) until stopped. */
function sampler(read: () => number, everyMs = 10) {
  const samples: { t: number; v: number }[] = [{ t: Date.now(), v: read() }];
  const timer = setInterval(() => samples.push({ t: Date.now(), v: read() }), everyMs);
  return {
    samples,
    stop: () => clearInterval(timer),
    /** Time of the last sample whose value differs from the one before (the last growth seen). */
    lastChange(): number {
      for (let i = samples.length - 1; i > 0; i--) if (samples[i]!.v !== samples[i - 1]!.v) return samples[i]!.t;
      return samples[0]!.t;
    },
    valueAt(t: number): number {
      let v = samples[0]!.v;
      for (const s of samples) if (s.t <= t) v = s.v;
      return v;
    },
  };
}

/** Polls `cond` (bounded), then returns how long it took in ms. */
async function timeUntil(cond: () => boolean | Promise<boolean>, label: string, ms: number, detail?: () => string): Promise<number> {
  const t0 = Date.now();
  await waitFor(cond, label, { ms, intervalMs: 10, detail });
  return Date.now() - t0;
}

/** Waits (bounded) until the origin has stopped sending on `p` for `quietMs`; returns when it last grew. */
async function originQuiet(origin: Origin, p: string, quietMs: number, ms: number): Promise<number> {
  let last = origin.bytesServed(p);
  let lastAt = Date.now();
  await waitFor(
    () => {
      const v = origin.bytesServed(p);
      if (v !== last) {
        last = v;
        lastAt = Date.now();
      }
      return Date.now() - lastAt >= quietMs;
    },
    `origin to stop sending ${p}`,
    { ms, intervalMs: 10, detail: () => `bytesServed=${origin.bytesServed(p)}` },
  );
  return lastAt;
}

function rangeStart(range: string | null): number | null {
  const m = /^bytes=(\d+)-$/.exec(range ?? "");
  return m ? Number(m[1]) : null;
}

async function mustAct(url: string, mutation: Parameters<typeof act>[1], id: string, expectState?: string): Promise<void> {
  const r = await act(url, mutation, id);
  assert.ok(!r.errors?.length, `${mutation}: ${JSON.stringify(r.errors)}`);
  if (expectState) assert.equal(r.data[mutation].job.state, expectState, `${mutation} -> ${JSON.stringify(r.data)}`);
}

/** Runs the clean-ups in order, all of them, whatever fails. */
async function cleanup(...steps: (() => Promise<unknown> | unknown)[]): Promise<void> {
  for (const s of steps) {
    try {
      await s();
    } catch (err) {
      console.error("cleanup step failed:", err);
    }
  }
}

function note(t: TestContext, msg: string): void {
  t.diagnostic(msg);
  if (process.env.HAUL_TEST_VERBOSE) console.log(`  [${t.name}] ${msg}`);
}

// ---- 1. kill -9 mid-transfer, restart -------------------------------------------------------------

test("kill -9 of the child mid-transfer: a new process resumes at the persisted offset, right sha256, < 10% re-fetched", async (t) => {
  const SIZE = 40 * MiB;
  const RATE = 8 * MiB;
  const P = "/crash/big.bin";
  const database = await createTestDatabase();
  const storageRoot = tmpDir("haul-crash-");
  const origin = await startOrigin([{ path: P, size: SIZE }]);
  origin.fault(P, { type: "rate", bytesPerSecond: RATE });
  const db = await connect(database.url);
  let c1: HaulChild | undefined;
  let c2: HaulChild | undefined;
  try {
    const env = { HAUL_LEASE_SECONDS: "3" };
    c1 = await startHaulChild({ databaseUrl: database.url, storageRoot, env });
    const id = await createJob(c1.graphqlUrl, [{ remoteUrl: origin.urlFor(P), localPath: "crash/big.bin", sha256: origin.sha256Of(P) }]);
    const uuid = uuidOf(id);
    await mustAct(c1.graphqlUrl, "resumeJob", id, "QUEUED");

    // Kill the instant a checkpoint at or past 50% is committed (polling the row, not the API).
    await waitFor(async () => (await fileBytes(db, uuid)) >= BigInt(SIZE / 2), "50% of the file persisted", {
      ms: 30_000,
      intervalMs: 5,
      detail: () => c1!.output().slice(-1000),
    });
    await c1.kill("SIGKILL");
    const tKill = Date.now();
    assert.equal(c1.exited()?.signal, "SIGKILL");
    const persisted = await fileBytes(db, uuid); // the dead process's last committed offset
    const atKill = await one<{ state: string; lease_holder: string | null }>(db, `SELECT state::text AS state, lease_holder FROM job WHERE id = $1::uuid`, [uuid]);
    assert.equal(atKill.state, "TRANSFERRING", "killed mid-transfer");
    assert.ok(atKill.lease_holder?.includes(`:${c1.pid}:`), `the dead child held the lease: ${atKill.lease_holder}`);
    await originQuiet(origin, P, 300, 5_000); // the dead process's connection is gone
    const servedToDead = origin.bytesServed(P);
    assert.equal(origin.requests(P).length, 1);
    const temps = tempFiles(storageRoot);
    assert.equal(temps.length, 1, `one temporary file: ${temps.join(", ")}`);
    const onDisk = fs.statSync(path.join(storageRoot, temps[0]!)).size;
    assert.ok(onDisk >= Number(persisted), `the temporary file (${onDisk} bytes) holds at least the persisted offset ${persisted}`);

    // A NEW process on the same database and storage root.
    c2 = await startHaulChild({ databaseUrl: database.url, storageRoot, env });
    const done = await waitForState(c2.graphqlUrl, id, ["TRANSFERRED", "ERROR"], 60_000);
    assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
    assert.equal(done.progress.bytesTransferred, String(SIZE));

    const reqs = origin.requests(P).filter((r) => r.method === "GET");
    assert.equal(reqs.length, 2, `one request per process: ${JSON.stringify(reqs.map((r) => ({ range: r.range, status: r.status, bytes: r.bytesSent })))}`);
    const resume = reqs[1]!;
    const resumedAt = rangeStart(resume.range);
    assert.ok(resumedAt !== null, `the resume request carried a Range header: ${resume.range}`);
    assert.ok(resumedAt > 0 && resumedAt <= Number(persisted), `Range starts at ${resumedAt}, persisted offset ${persisted}`);
    assert.ok(resume.ifRange, "If-Range sent with the resume");
    assert.equal(resume.status, 206);
    const total = origin.bytesServed(P);
    const refetched = total - SIZE;
    assert.ok(total < SIZE * 1.1, `origin served ${total} bytes for a ${SIZE}-byte file (re-fetched ${refetched} = ${((100 * refetched) / SIZE).toFixed(2)}%)`);

    // The STATE_CHANGED log: the sweep (actor null) put it back to QUEUED, one new attempt finished it.
    const path_ = statePath(await eventsOf(db, uuid));
    assert.deepEqual(path_, ["SUSPENDED", "QUEUED", "CONNECTING", "TRANSFERRING", "QUEUED", "CONNECTING", "TRANSFERRING", "TRANSFERRED"]);

    await mustAct(c2.graphqlUrl, "completeJob", id, "ACKNOWLEDGED");
    assert.equal(sha256File(path.join(storageRoot, "local", "crash/big.bin")), origin.sha256Of(P));
    assert.deepEqual(tempFiles(storageRoot), [], "no temporary or take-over files left");

    note(t, `persisted offset at kill ${persisted} (${((100 * Number(persisted)) / SIZE).toFixed(1)}%); served to the killed process ${servedToDead}; resumed with Range from ${resumedAt}`);
    note(t, `re-fetched after kill -9: ${refetched} bytes (${((100 * refetched) / SIZE).toFixed(2)}% of ${SIZE}); total served ${total}`);
    note(t, `kill -> resume request: ${resume.at - tKill} ms (second process: lease 3 s, sweep 5 s, plus its start-up)`);
  } finally {
    await cleanup(
      () => c1?.stop(),
      () => c2?.stop(),
      () => origin.close(),
      () => db.end(),
      () => database.drop(),
      () => fs.rmSync(storageRoot, { recursive: true, force: true }),
    );
  }
});

// ---- 2. fencing -----------------------------------------------------------------------------------

test("fencing: after a newer claim, the old worker writes nothing more for the job and its transfer stops", async (t) => {
  const LEASE = 3;
  const P = "/fence/slow.bin";
  const SIZE = 6 * MiB;
  const s = await startServer({ worker: { leaseSeconds: LEASE } });
  const origin = await startOrigin([{ path: P, size: SIZE }]);
  origin.fault(P, { type: "rate", bytesPerSecond: MiB });
  const db = await connect(s.database.url);
  try {
    const url = s.graphqlUrl;
    const worker = s.app.worker!;
    const id = await createJob(url, [{ remoteUrl: origin.urlFor(P), localPath: "fence/slow.bin", sha256: origin.sha256Of(P) }]);
    const uuid = uuidOf(id);
    await mustAct(url, "resumeJob", id, "QUEUED");
    await waitFor(async () => (await fileBytes(db, uuid)) > 300_000n, "bytes persisted", { ms: 15_000, intervalMs: 20 });
    const old = await one<{ token: string; holder: string; file_id: string }>(
      db,
      `SELECT j.lease_token::text AS token, j.lease_holder AS holder, f.id::text AS file_id FROM job j JOIN file f ON f.job_id = j.id WHERE j.id = $1::uuid`,
      [uuid],
    );
    assert.equal(old.holder, worker.holder);
    const oldToken = BigInt(old.token);
    const tempPath = new FileStorage(s.storageRoot).tempPath("local", { id: old.file_id, localPath: "fence/slow.bin" });

    // A newer claim by someone else (a live holder: its lease is long, so no sweep reclaims it).
    // Taken in one transaction with the snapshot: any report in flight committed before our UPDATE
    // got the row lock; any later one must be refused.
    const snapshot = await s.db.prisma.$transaction(async (tx) => {
      const n = await tx.$executeRawUnsafe(
        `UPDATE job SET lease_token = lease_token + 1, lease_holder = 'someone-else', lease_expires_at = now() + interval '10 minutes' WHERE id = $1::uuid`,
        uuid,
      );
      assert.equal(n, 1);
      const [job] = await tx.$queryRawUnsafe<{ version: number; token: string; holder: string; state: string; bytes: string; expires: Date; modified: Date }[]>(
        `SELECT version, lease_token::text AS token, lease_holder AS holder, state::text AS state, bytes_transferred::text AS bytes,
                lease_expires_at AS expires, modified_at AS modified FROM job WHERE id = $1::uuid`,
        uuid,
      );
      const [file] = await tx.$queryRawUnsafe<{ bytes: string; etag: string | null }[]>(`SELECT bytes_transferred::text AS bytes, etag FROM file WHERE job_id = $1::uuid`, uuid);
      const [ev] = await tx.$queryRawUnsafe<{ n: number; max: string }[]>(`SELECT count(*)::int AS n, max(seq)::text AS max FROM job_event WHERE job_id = $1::uuid`, uuid);
      return { job: job!, file: file!, events: ev! };
    });
    const t0 = Date.now();
    assert.equal(snapshot.job.state, "TRANSFERRING");
    const read = async () => {
      const job = await one<typeof snapshot.job>(
        db,
        `SELECT version, lease_token::text AS token, lease_holder AS holder, state::text AS state, bytes_transferred::text AS bytes,
                lease_expires_at AS expires, modified_at AS modified FROM job WHERE id = $1::uuid`,
        [uuid],
      );
      const file = await one<typeof snapshot.file>(db, `SELECT bytes_transferred::text AS bytes, etag FROM file WHERE job_id = $1::uuid`, [uuid]);
      const ev = await one<typeof snapshot.events>(db, `SELECT count(*)::int AS n, max(seq)::text AS max FROM job_event WHERE job_id = $1::uuid`, [uuid]);
      return { job, file, events: ev };
    };

    // The old worker's transfer stops within about a lease (its next checkpoint or heartbeat).
    const lastGrowth = await originQuiet(origin, P, 1_000, (LEASE + 3) * 1000);
    const stopMs = lastGrowth - t0;
    assert.ok(stopMs <= LEASE * 1000, `the old worker's transfer stopped ${stopMs} ms after the newer claim (lease ${LEASE} s)`);
    await waitFor(() => worker.activeJobs === 0, "the old worker to drop the job", { ms: 5_000 });
    const tempSize = fs.statSync(tempPath).size;

    // Watch a while longer (heartbeats every lease/3, sweeps every second): nothing moves.
    await sleep(LEASE * 1000);
    const after = await read();
    assert.deepEqual(after, snapshot, "the job row, the file row and the event log are exactly as the newer claim left them");
    assert.equal(fs.statSync(tempPath).size, tempSize, "the old worker no longer writes the temporary file");
    assert.ok(origin.bytesServed(P) < SIZE, "the transfer did not finish");

    // Unit level, through createReports: stale leases write nothing.
    const reports = createReports({ db: s.db });
    const progress = { events: [{ type: "PROGRESS" as const }], files: [{ id: old.file_id, bytesTransferred: 1n, bytesTotal: BigInt(SIZE) }], rate: 1 };
    const stale = [
      { holder: worker.holder, token: oldToken }, // the old attempt, exactly
      { holder: "someone-else", token: oldToken }, // the current holder's name, a stale token
      { holder: worker.holder, token: oldToken + 1n }, // the current token, another holder
    ];
    for (const lease of stale) {
      await assert.rejects(reports.report(uuid, lease, progress), (e: unknown) => e instanceof LeaseLostError, `report with ${JSON.stringify({ ...lease, token: String(lease.token) })}`);
      await assert.rejects(
        reports.report(uuid, lease, { events: [{ type: "ALL_FILES_DONE" }], files: [{ id: old.file_id, bytesTransferred: BigInt(SIZE), transferred: true }], release: true }),
        (e: unknown) => e instanceof LeaseLostError,
      );
      await assert.rejects(reports.report(uuid, lease, { events: [{ type: "YIELD" }], release: true }), (e: unknown) => e instanceof LeaseLostError);
      await reports.release(uuid, lease);
      assert.deepEqual(await reports.heartbeat(lease.holder, [{ id: uuid, token: lease.token }], LEASE), [uuid], "the heartbeat reports the lease lost");
    }
    await assert.rejects(reports.report("00000000-0000-4000-8000-000000000000", stale[0]!, progress), (e: unknown) => e instanceof LeaseLostError);
    assert.deepEqual(await read(), snapshot, "stale reports, releases and heartbeats changed nothing");

    // Control: the same report with the current lease does write (the check above is not vacuous).
    const written = await reports.report(uuid, { holder: "someone-else", token: oldToken + 1n }, { files: [{ id: old.file_id, bytesTransferred: BigInt(snapshot.file.bytes) }] });
    assert.equal(written.version, snapshot.job.version + 1);

    note(t, `old worker's transfer stopped ${stopMs} ms after the newer claim; nothing written in the ${Date.now() - t0} ms observed`);

    // Then the newer holder "dies" (its lease runs out): the worker reclaims the job, takes the
    // temporary file over (the bytes the old attempt wrote past the persisted offset are dropped)
    // and finishes it with the right content.
    await db.query(`UPDATE job SET lease_expires_at = now() - interval '1 second' WHERE id = $1::uuid`, [uuid]);
    const done = await waitForState(url, id, ["TRANSFERRED", "ERROR"], 20_000);
    assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
    const reqs = origin.requests(P);
    assert.equal(reqs.length, 2);
    assert.equal(rangeStart(reqs[1]!.range), Number(snapshot.file.bytes), "resumed at the offset persisted before the newer claim");
    const final = await one<{ token: string; holder: string | null }>(db, `SELECT lease_token::text AS token, lease_holder AS holder FROM job WHERE id = $1::uuid`, [uuid]);
    assert.deepEqual(final, { token: String(oldToken + 2n), holder: null });
    await mustAct(url, "completeJob", id, "ACKNOWLEDGED");
    assert.equal(sha256File(path.join(s.storageRoot, "local", "fence/slow.bin")), origin.sha256Of(P));
    assert.deepEqual(tempFiles(s.storageRoot), []);
  } finally {
    await cleanup(
      () => db.end(),
      () => s.close(),
      () => origin.close(),
    );
  }
});

// ---- 3. an expired lease is reclaimed by another process ------------------------------------------

test("expired lease: a crashed child's job is reclaimed by another worker within lease + sweep and finishes", async (t) => {
  const LEASE = 3;
  const SWEEP = 1;
  const SIZE = 12 * MiB;
  const P = "/reclaim/file.bin";
  const database = await createTestDatabase();
  const storageRoot = tmpDir("haul-reclaim-");
  const origin = await startOrigin([{ path: P, size: SIZE }]);
  const RATE = 3 * MiB;
  origin.fault(P, { type: "rate", bytesPerSecond: RATE });
  const db = await connect(database.url);
  let c1: HaulChild | undefined;
  let s: (TestServer & { database: TestDatabase }) | undefined;
  try {
    c1 = await startHaulChild({ databaseUrl: database.url, storageRoot, env: { HAUL_LEASE_SECONDS: String(LEASE) } });
    const id = await createJob(c1.graphqlUrl, [{ remoteUrl: origin.urlFor(P), localPath: "reclaim/file.bin", sha256: origin.sha256Of(P) }]);
    const uuid = uuidOf(id);
    await mustAct(c1.graphqlUrl, "resumeJob", id, "QUEUED");
    await waitFor(async () => (await fileBytes(db, uuid)) >= BigInt(SIZE / 4), "25% persisted by the child", { ms: 20_000, intervalMs: 10 });

    // The other worker is already running (it must not take a live lease), then the child dies.
    s = await startServer({ database, storageRoot, worker: { leaseSeconds: LEASE, sweepSeconds: SWEEP } });
    const other = s.app.worker!.holder;
    await sleep(1_500);
    const live = await one<{ holder: string }>(db, `SELECT lease_holder AS holder FROM job WHERE id = $1::uuid`, [uuid]);
    assert.ok(live.holder.includes(`:${c1.pid}:`), `the live child keeps its lease: ${live.holder}`);
    await c1.kill("SIGKILL");
    const tKill = Date.now();
    const lease = await one<{ remaining_ms: number }>(db, `SELECT (extract(epoch FROM lease_expires_at - now()) * 1000)::int AS remaining_ms FROM job WHERE id = $1::uuid`, [uuid]);
    const persisted = await fileBytes(db, uuid);
    await originQuiet(origin, P, 300, 5_000);
    const servedToDead = origin.bytesServed(P);

    const budget = (LEASE + SWEEP + 2) * 1000;
    await waitFor(() => origin.requests(P).some((r) => r.at >= tKill), "a resume request from the other worker", { ms: budget + 5_000, intervalMs: 10 });
    const resume = origin.requests(P).find((r) => r.at >= tKill)!;
    const reclaimMs = resume.at - tKill;
    const holderNow = await one<{ holder: string | null; token: string }>(db, `SELECT lease_holder AS holder, lease_token::text AS token FROM job WHERE id = $1::uuid`, [uuid]);
    assert.equal(holderNow.holder, other, "the other worker holds the job now");
    assert.equal(holderNow.token, "2", "one claim by each process");
    assert.ok(reclaimMs >= lease.remaining_ms - 300, `not reclaimed before the lease ran out (${reclaimMs} ms < ${lease.remaining_ms} ms left)`);
    assert.ok(reclaimMs <= budget, `reclaimed ${reclaimMs} ms after the kill (budget lease ${LEASE} s + sweep ${SWEEP} s + 2 s)`);
    const resumedAt = rangeStart(resume.range);
    assert.ok(resumedAt !== null && resumedAt > 0 && resumedAt <= Number(persisted), `resume Range ${resume.range}, persisted ${persisted}`);

    const done = await waitForState(s.graphqlUrl, id, ["TRANSFERRED", "ERROR"], 30_000);
    assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
    await mustAct(s.graphqlUrl, "completeJob", id, "ACKNOWLEDGED");
    assert.equal(sha256File(path.join(storageRoot, "local", "reclaim/file.bin")), origin.sha256Of(P));
    // The kill came at an arbitrary moment: what is fetched twice is exactly what the dead process
    // received past its last checkpoint (at most ~one checkpoint interval, 500 ms, of data).
    const refetched = origin.bytesServed(P) - SIZE;
    assert.equal(refetched, servedToDead - resumedAt, "the new attempt fetched exactly the rest of the file");
    assert.ok(refetched <= RATE, `re-fetched ${refetched} bytes: more than 1 s of data at ${RATE} B/s (checkpoints every 500 ms)`);
    note(t, `lease had ${lease.remaining_ms} ms left at the kill; reclaimed (resume request) ${reclaimMs} ms after kill -9; persisted ${persisted}, served to the dead child ${servedToDead}, re-fetched ${refetched} bytes`);
  } finally {
    await cleanup(
      () => c1?.stop(),
      () => s?.close(),
      () => origin.close(),
      () => db.end(),
      () => database.drop(),
      () => fs.rmSync(storageRoot, { recursive: true, force: true }),
    );
  }
});

// ---- 4. priority pre-emption; FOREGROUND always runs ------------------------------------------------

test("a HIGH job pre-empts a running LOW one (QUEUED by the service), which later resumes at its offset", async (t) => {
  const s = await startServer({ worker: { maxTransfers: 1 } });
  const origin = await startOrigin([
    { path: "/prio/low.bin", size: 4 * MiB },
    { path: "/prio/high.bin", size: 1536 * 1024 },
  ]);
  origin.fault("/prio/low.bin", { type: "rate", bytesPerSecond: MiB });
  origin.fault("/prio/high.bin", { type: "rate", bytesPerSecond: MiB });
  const db = await connect(s.database.url);
  try {
    const url = s.graphqlUrl;
    const low = await createJob(url, [{ remoteUrl: origin.urlFor("/prio/low.bin"), localPath: "prio/low.bin", sha256: origin.sha256Of("/prio/low.bin") }], { priority: "LOW" });
    const lowId = uuidOf(low);
    await mustAct(url, "resumeJob", low, "QUEUED");
    await waitFor(async () => (await fileBytes(db, lowId)) > 500_000n, "LOW moving", { ms: 15_000, intervalMs: 20 });

    const high = await createJob(url, [{ remoteUrl: origin.urlFor("/prio/high.bin"), localPath: "prio/high.bin", sha256: origin.sha256Of("/prio/high.bin") }], { priority: "HIGH" });
    const highId = uuidOf(high);
    const tHigh = Date.now();
    await mustAct(url, "resumeJob", high, "QUEUED");
    await timeUntil(
      async () => (await one<{ state: string }>(db, `SELECT state::text AS state FROM job WHERE id = $1::uuid`, [lowId])).state === "QUEUED",
      "LOW back to QUEUED",
      5_000,
    );
    const preemptMs = Date.now() - tHigh;
    // While HIGH runs, LOW waits with its offset persisted and its lease released.
    const lowRow = await one<{ state: string; holder: string | null }>(db, `SELECT state::text AS state, lease_holder AS holder FROM job WHERE id = $1::uuid`, [lowId]);
    assert.deepEqual(lowRow, { state: "QUEUED", holder: null });
    const offset = await fileBytes(db, lowId);
    assert.ok(offset > 500_000n);
    await originQuiet(origin, "/prio/low.bin", 300, 3_000);
    const highNow = await jobStatus(url, high);
    assert.ok(["CONNECTING", "TRANSFERRING"].includes(highNow.state), `HIGH runs while LOW waits: ${highNow.state}`);

    const highDone = await waitForState(url, high, ["TRANSFERRED", "ERROR"], 15_000);
    assert.equal(highDone.state, "TRANSFERRED", JSON.stringify(highDone));
    const lowDone = await waitForState(url, low, ["TRANSFERRED", "ERROR"], 20_000);
    assert.equal(lowDone.state, "TRANSFERRED", JSON.stringify(lowDone));

    const lowEvents = await eventsOf(db, lowId);
    assert.deepEqual(statePath(lowEvents), ["SUSPENDED", "QUEUED", "CONNECTING", "TRANSFERRING", "QUEUED", "CONNECTING", "TRANSFERRING", "TRANSFERRED"]);
    const yielded = lowEvents.find((e) => e.kind === "STATE_CHANGED" && e.previous_state === "TRANSFERRING" && e.state === "QUEUED");
    assert.ok(yielded, "a STATE_CHANGED TRANSFERRING -> QUEUED");
    assert.equal(yielded.actor, null, "pre-emption is the service's doing (actor null)");
    const highEvents = await eventsOf(db, highId);
    const highTransferred = highEvents.find((e) => e.state === "TRANSFERRED")!;
    const lowReconnect = lowEvents.filter((e) => e.state === "CONNECTING")[1]!;
    assert.ok(BigInt(lowReconnect.seq) > BigInt(highTransferred.seq), "LOW starts again only after HIGH is done (one slot)");

    const lowReqs = origin.requests("/prio/low.bin");
    assert.equal(lowReqs.length, 2, JSON.stringify(lowReqs.map((r) => r.range)));
    assert.equal(lowReqs[0]!.range, null);
    assert.equal(rangeStart(lowReqs[1]!.range), Number(offset), `LOW resumed with Range at its persisted offset ${offset}`);
    assert.equal(lowReqs[1]!.status, 206);
    assert.ok(lowReqs[1]!.ifRange);
    assert.ok(origin.bytesServed("/prio/low.bin") < 4 * MiB * 1.1);
    assert.equal(origin.requests("/prio/high.bin").length, 1);

    await mustAct(url, "completeJob", low, "ACKNOWLEDGED");
    await mustAct(url, "completeJob", high, "ACKNOWLEDGED");
    assert.equal(sha256File(path.join(s.storageRoot, "local", "prio/low.bin")), origin.sha256Of("/prio/low.bin"));
    assert.equal(sha256File(path.join(s.storageRoot, "local", "prio/high.bin")), origin.sha256Of("/prio/high.bin"));
    note(t, `LOW back in QUEUED ${preemptMs} ms after HIGH's resumeJob was sent; LOW resumed from its offset ${offset}`);
  } finally {
    await cleanup(
      () => db.end(),
      () => s.close(),
      () => origin.close(),
    );
  }
});

test("FOREGROUND jobs always run: with one slot taken by a NORMAL job, a FOREGROUND job starts at once and pre-empts nothing", async (t) => {
  const s = await startServer({ worker: { maxTransfers: 1 } });
  const origin = await startOrigin([
    { path: "/fg/normal.bin", size: 3 * MiB },
    { path: "/fg/fg.bin", size: MiB },
  ]);
  origin.fault("/fg/normal.bin", { type: "rate", bytesPerSecond: MiB });
  origin.fault("/fg/fg.bin", { type: "rate", bytesPerSecond: MiB });
  const db = await connect(s.database.url);
  try {
    const url = s.graphqlUrl;
    const normal = await createJob(url, [{ remoteUrl: origin.urlFor("/fg/normal.bin"), localPath: "fg/normal.bin", sha256: origin.sha256Of("/fg/normal.bin") }]);
    const normalId = uuidOf(normal);
    await mustAct(url, "resumeJob", normal, "QUEUED");
    await waitFor(async () => (await fileBytes(db, normalId)) > 200_000n, "NORMAL moving", { ms: 15_000, intervalMs: 20 });

    const fg = await createJob(url, [{ remoteUrl: origin.urlFor("/fg/fg.bin"), localPath: "fg/fg.bin", sha256: origin.sha256Of("/fg/fg.bin") }], { priority: "FOREGROUND" });
    const fgId = uuidOf(fg);
    await mustAct(url, "resumeJob", fg, "QUEUED");
    const bothMs = await timeUntil(
      async () => {
        const r = await db.query(`SELECT id::text AS id, state::text AS state FROM job WHERE id = ANY($1::uuid[])`, [[normalId, fgId]]);
        return r.rows.length === 2 && r.rows.every((x: { state: string }) => x.state === "TRANSFERRING");
      },
      "NORMAL and FOREGROUND both TRANSFERRING",
      3_000,
    );
    const fgDone = await waitForState(url, fg, ["TRANSFERRED", "ERROR"], 10_000);
    assert.equal(fgDone.state, "TRANSFERRED", JSON.stringify(fgDone));
    const normalDone = await waitForState(url, normal, ["TRANSFERRED", "ERROR"], 15_000);
    assert.equal(normalDone.state, "TRANSFERRED", JSON.stringify(normalDone));
    assert.deepEqual(statePath(await eventsOf(db, normalId)), ["SUSPENDED", "QUEUED", "CONNECTING", "TRANSFERRING", "TRANSFERRED"], "NORMAL was never pre-empted");
    assert.equal(origin.requests("/fg/normal.bin").length, 1, "NORMAL's transfer was never interrupted");
    await mustAct(url, "completeJob", fg, "ACKNOWLEDGED");
    await mustAct(url, "completeJob", normal, "ACKNOWLEDGED");
    assert.equal(sha256File(path.join(s.storageRoot, "local", "fg/fg.bin")), origin.sha256Of("/fg/fg.bin"));
    assert.equal(sha256File(path.join(s.storageRoot, "local", "fg/normal.bin")), origin.sha256Of("/fg/normal.bin"));
    note(t, `FOREGROUND transferring alongside NORMAL ${bothMs} ms after its resumeJob returned`);
  } finally {
    await cleanup(
      () => db.end(),
      () => s.close(),
      () => origin.close(),
    );
  }
});

// ---- 5. two workers, one database -----------------------------------------------------------------

test("two worker processes on one database share 20 jobs; no job runs twice", async (t) => {
  const N = 20;
  const SIZE = 100_000;
  const database = await createTestDatabase();
  const storageRoot = tmpDir("haul-share-");
  const origin = await startOrigin();
  const db = await connect(database.url);
  let a: (TestServer & { database: TestDatabase }) | undefined;
  let b: (TestServer & { database: TestDatabase }) | undefined;
  let poll: NodeJS.Timeout | undefined;
  try {
    a = await startServer({ database, storageRoot, worker: true });
    b = await startServer({ database, storageRoot, worker: true });
    const holders = new Map([
      [a.app.worker!.holder, "a"],
      [b.app.worker!.holder, "b"],
    ]);
    const servers = [a, b];
    const ids: string[] = [];
    for (let i = 0; i < N; i++) {
      const p = `/share/f${i}.bin`;
      origin.add({ path: p, size: SIZE });
      // Slow enough (~0.2 s each) that the lease holder of every job is observable in the table.
      origin.fault(p, { type: "rate", bytesPerSecond: 500_000 });
      ids.push(await createJob(servers[i % 2]!.graphqlUrl, [{ remoteUrl: origin.urlFor(p), localPath: `share/f${i}.bin`, sha256: origin.sha256Of(p) }]));
    }
    const uuids = ids.map(uuidOf);

    // Record which worker holds which job, as seen in the table.
    const seen = new Map<string, Set<string>>();
    let polling = false;
    poll = setInterval(() => {
      if (polling) return;
      polling = true;
      db.query(`SELECT id::text AS id, lease_holder AS holder FROM job WHERE lease_holder IS NOT NULL`)
        .then((r) => {
          for (const row of r.rows as { id: string; holder: string }[]) {
            if (!seen.has(row.id)) seen.set(row.id, new Set());
            seen.get(row.id)!.add(row.holder);
          }
        })
        .catch(() => {})
        .finally(() => (polling = false));
    }, 5);

    const t0 = Date.now();
    await Promise.all(ids.map((id, i) => mustAct(servers[i % 2]!.graphqlUrl, "resumeJob", id, "QUEUED")));
    await waitFor(
      async () => (await one<{ n: number }>(db, `SELECT count(*)::int AS n FROM job WHERE state = 'TRANSFERRED'`)).n === N,
      "all 20 jobs TRANSFERRED",
      { ms: 40_000, intervalMs: 50, detail: () => JSON.stringify(origin.requests().length) },
    );
    const allMs = Date.now() - t0;
    clearInterval(poll);
    poll = undefined;

    const errors = await one<{ n: number }>(db, `SELECT count(*)::int AS n FROM job WHERE state <> 'TRANSFERRED'`);
    assert.equal(errors.n, 0);
    for (const [i, uuid] of uuids.entries()) {
      assert.deepEqual(statePath(await eventsOf(db, uuid)), ["SUSPENDED", "QUEUED", "CONNECTING", "TRANSFERRING", "TRANSFERRED"], `job ${i}: one attempt`);
      assert.equal(origin.requests(`/share/f${i}.bin`).length, 1, `file ${i} fetched once`);
    }
    const tokens = await db.query(`SELECT lease_token::text AS token, lease_holder AS holder FROM job`);
    assert.ok(
      tokens.rows.every((r: { token: string; holder: string | null }) => r.token === "1" && r.holder === null),
      `every job claimed exactly once, every lease released: ${JSON.stringify(tokens.rows)}`,
    );
    assert.equal(origin.requests().length, N);

    const byWorker = new Map<string, number>([
      ["a", 0],
      ["b", 0],
    ]);
    for (const [id, hs] of seen) {
      assert.equal(hs.size, 1, `job ${id} held by one worker only: ${[...hs].join(", ")}`);
      const who = holders.get([...hs][0]!);
      assert.ok(who, `held by a known worker: ${[...hs][0]}`);
      byWorker.set(who, byWorker.get(who)! + 1);
    }
    assert.ok(byWorker.get("a")! > 0 && byWorker.get("b")! > 0, `both workers did some of the work: ${JSON.stringify([...byWorker])}`);
    note(t, `20 jobs in ${allMs} ms; observed holders for ${seen.size}/20 jobs: a=${byWorker.get("a")}, b=${byWorker.get("b")}`);
  } finally {
    if (poll) clearInterval(poll);
    await cleanup(
      () => a?.close(),
      () => b?.close(),
      () => origin.close(),
      () => db.end(),
      () => database.drop(),
      () => fs.rmSync(storageRoot, { recursive: true, force: true }),
    );
  }
});

// ---- 6. suspend / cancel through another process ----------------------------------------------------

test("suspendJob sent to another process stops the transfer within 1 s; cancelJob there leaves no temp files", async (t) => {
  const SIZE = 20 * MiB;
  const RATE = 2 * MiB;
  const database = await createTestDatabase();
  const storageRoot = tmpDir("haul-xproc-");
  const origin = await startOrigin([
    { path: "/x/one.bin", size: SIZE },
    { path: "/x/two.bin", size: SIZE },
  ]);
  origin.fault("/x/one.bin", { type: "rate", bytesPerSecond: RATE });
  origin.fault("/x/two.bin", { type: "rate", bytesPerSecond: RATE });
  const db = await connect(database.url);
  let A: HaulChild | undefined;
  let B: (TestServer & { database: TestDatabase }) | undefined;
  try {
    // A: a child process with the worker; B: in this process, API only, same database and storage root.
    A = await startHaulChild({ databaseUrl: database.url, storageRoot, env: { HAUL_LEASE_SECONDS: "5" } });
    B = await startServer({ database, storageRoot });
    assert.equal(B.app.worker, null);
    const url = B.graphqlUrl;

    // Suspend.
    const one_ = await createJob(url, [{ remoteUrl: origin.urlFor("/x/one.bin"), localPath: "s/one.bin" }]);
    const oneId = uuidOf(one_);
    await mustAct(url, "resumeJob", one_, "QUEUED");
    await waitFor(async () => (await fileBytes(db, oneId)) > 500_000n, "job 1 moving on A", { ms: 15_000, intervalMs: 20, detail: () => A!.output().slice(-1000) });
    const holder1 = await one<{ holder: string }>(db, `SELECT lease_holder AS holder FROM job WHERE id = $1::uuid`, [oneId]);
    assert.ok(holder1.holder.includes(`:${A.pid}:`), `A runs job 1: ${holder1.holder}`);
    const s1 = sampler(() => origin.bytesServed("/x/one.bin"), 5);
    const t0 = Date.now();
    await mustAct(url, "suspendJob", one_, "SUSPENDED");
    const tAck = Date.now();
    await sleep(2_000);
    s1.stop();
    const suspendStopMs = s1.lastChange() - t0;
    assert.ok(suspendStopMs <= 1_000, `the origin kept sending to A ${suspendStopMs} ms after suspendJob was sent to B`);
    assert.equal(s1.valueAt(t0 + 1_000), origin.bytesServed("/x/one.bin"), "nothing sent after 1 s");
    assert.equal((await jobStatus(url, one_)).state, "SUSPENDED");
    await waitFor(async () => (await one<{ holder: string | null }>(db, `SELECT lease_holder AS holder FROM job WHERE id = $1::uuid`, [oneId])).holder === null, "A releases the lease of job 1", { ms: 3_000 });
    note(t, `suspend: B acknowledged in ${tAck - t0} ms; the origin stopped sending to A ${suspendStopMs} ms after the call`);

    // Cancel.
    const two = await createJob(url, [{ remoteUrl: origin.urlFor("/x/two.bin"), localPath: "c/two.bin" }]);
    const twoId = uuidOf(two);
    await mustAct(url, "resumeJob", two, "QUEUED");
    await waitFor(async () => (await fileBytes(db, twoId)) > 500_000n, "job 2 moving on A", { ms: 15_000, intervalMs: 20 });
    assert.equal(tempFiles(path.join(storageRoot, "local", "c")).length, 1, "job 2 has its temporary file");
    const s2 = sampler(() => origin.bytesServed("/x/two.bin"), 5);
    const t1 = Date.now();
    await mustAct(url, "cancelJob", two, "CANCELLED");
    const noTempMs = await timeUntil(() => tempFiles(path.join(storageRoot, "local", "c")).length === 0, "job 2's temporary file gone", 3_000, () =>
      tempFiles(storageRoot).join(", "),
    );
    await sleep(1_500); // and it does not come back (A's attempt winding down after B deleted it)
    s2.stop();
    const cancelStopMs = s2.lastChange() - t1;
    assert.deepEqual(tempFiles(path.join(storageRoot, "local", "c")), [], "no temporary file for the cancelled job");
    assert.ok(!fs.existsSync(path.join(storageRoot, "local", "c/two.bin")));
    assert.ok(cancelStopMs <= 1_000, `the origin kept sending to A ${cancelStopMs} ms after cancelJob was sent to B`);

    // And the suspended one's temporary file goes with its cancel too: nothing left at all.
    await mustAct(url, "cancelJob", one_, "CANCELLED");
    await waitFor(() => tempFiles(storageRoot).length === 0, "no temporary files under the storage root", { ms: 3_000, detail: () => tempFiles(storageRoot).join(", ") });
    note(t, `cancel: the origin stopped sending to A ${cancelStopMs} ms after the call; temp file gone after ${noTempMs} ms`);
  } finally {
    await cleanup(
      () => A?.stop(),
      () => B?.close(),
      () => origin.close(),
      () => db.end(),
      () => database.drop(),
      () => fs.rmSync(storageRoot, { recursive: true, force: true }),
    );
  }
});
