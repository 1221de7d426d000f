/**
 * Raw statements that return whole job rows (src/store/jobs.ts jobRowSql: lockJobs, updateJobs, the claim) give
 * exactly what Prisma's model API gives for the same rows: same keys, same values, same types
 * (BigInt, Date, parsed JSON, null), on Postgres and on the embedded PGlite.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { randomUUID } from "node:crypto";
import { openDatabase, sqlLiteral, TRANSACTION_STATEMENT_TIMEOUT_MS, type Database } from "../../src/store/db.js";
import { ConflictError, jobFromDriverRow, jobRowSql, lockJobs, updateJobs, updateJobsScript } from "../../src/store/jobs.js";
import { createTestDatabase } from "../helpers/db.js";

async function compare(db: Database): Promise<void> {
  const full = randomUUID();
  const bare = randomUUID();
  const fileId = randomUUID();
  await db.prisma.job.create({
    data: {
      id: full,
      type: "DOWNLOAD",
      displayName: "full ✓",
      description: "every column set",
      priority: "HIGH",
      state: "TRANSIENT_ERROR",
      owner: "alice",
      errorContext: "REMOTE_FILE",
      errorCode: "HTTP_503",
      errorMessage: "try later",
      errorFileId: fileId,
      errorHttpStatus: 503,
      errorCount: 3,
      filesTotal: 2,
      filesTransferred: 1,
      bytesTotal: 9_007_199_254_740_993n,
      bytesTransferred: 4_294_967_296n,
      retryAt: new Date("2026-11-26T10:00:00.123Z"),
      noProgressSince: new Date("2026-11-26T09:00:00.001Z"),
      activeSince: new Date("2026-11-26T08:00:00Z"),
      activeSeconds: 42,
      transferCompletedAt: new Date("2026-11-26T11:00:00.999Z"),
      version: 7,
      maxBytesPerSecond: 123_456n,
      httpHeaders: [{ name: "x-a", value: "b" }],
      httpCredentials: { username: "u", password: "p" },
      leaseHolder: "host:1:abcd",
      leaseExpiresAt: new Date("2026-11-26T12:00:00.5Z"),
      leaseToken: 12n,
    },
  });
  await db.prisma.job.create({ data: { id: bare, type: "DOWNLOAD", displayName: "bare", owner: "bob", bytesTotal: null } });
  const viaModel = await db.prisma.job.findMany({ where: { id: { in: [full, bare] } } });
  const viaRaw = await db.prisma.$transaction((tx) => lockJobs(tx, [bare, full, randomUUID()]));
  assert.equal(viaRaw.size, 2, "an unknown id is simply absent");
  // The same rows straight through the driver, typed by jobFromDriverRow (the group commit's path).
  const viaDriver = new Map(
    (await db.query<Record<string, unknown>>(`SELECT ${jobRowSql("job")} FROM job WHERE id = ANY($1::uuid[])`, [[full, bare]])).map((r) => {
      const j = jobFromDriverRow(r);
      return [j.id, j];
    }),
  );
  for (const m of viaModel) {
    const d = viaDriver.get(m.id)!;
    assert.deepEqual(Object.keys(d).sort(), Object.keys(m).sort(), "driver: the same columns");
    for (const k of Object.keys(m) as (keyof typeof m)[]) {
      assert.deepEqual(d[k], m[k], `driver: ${m.displayName}: ${k}`);
      assert.equal(typeof d[k], typeof m[k], `driver: ${m.displayName}: type of ${k}`);
    }
  }
  for (const m of viaModel) {
    const r = viaRaw.get(m.id)!;
    assert.deepEqual(Object.keys(r).sort(), Object.keys(m).sort(), "the same columns");
    for (const k of Object.keys(m) as (keyof typeof m)[]) {
      assert.deepEqual(r[k], m[k], `${m.displayName}: ${k}`);
      assert.equal(typeof r[k], typeof m[k], `${m.displayName}: type of ${k}`);
    }
  }
}

/** updateJobs' one-statement compare-and-set: every writable column, values per row, rows as the model API reads them. */
async function compareUpdates(db: Database): Promise<void> {
  const ids = [randomUUID(), randomUUID(), randomUUID()];
  for (const id of ids) await db.prisma.job.create({ data: { id, type: "DOWNLOAD", displayName: id.slice(0, 8), owner: "carol" } });
  const before = await db.prisma.job.findMany({ where: { id: { in: ids } }, orderBy: { id: "asc" } });
  const at = new Date("2026-11-26T13:14:15.678Z");
  const written = await db.prisma.$transaction((tx) =>
    updateJobs(tx, [
      // every column the fast path writes, with distinct values per row
      ...before.slice(0, 2).map((b, i) => ({
        expected: b,
        data: {
          state: i ? "ERROR" : "TRANSIENT_ERROR",
          priority: "LOW",
          errorContext: "GENERAL_TRANSPORT",
          errorCode: `CODE_${i}`,
          errorMessage: `message ${i} ✓`,
          errorFileId: randomUUID(),
          errorHttpStatus: 500 + i,
          errorCount: 2 + i,
          filesTotal: 10 + i,
          filesTransferred: 3 + i,
          bytesTotal: 2n ** 40n + BigInt(i),
          bytesTransferred: 2n ** 33n + BigInt(i),
          retryAt: new Date(at.getTime() + i),
          noProgressSince: i ? null : at,
          activeSince: null,
          activeSeconds: 17 + i,
          modifiedAt: at,
          transferCompletedAt: null,
          leaseHolder: i ? null : "h:1:x",
          leaseExpiresAt: i ? null : at,
        } as const,
      })),
      // a column the fast path does not write: through the model API, in the same call
      { expected: before[2]!, data: { displayName: "renamed", modifiedAt: at } },
    ]),
  );
  const after = await db.prisma.job.findMany({ where: { id: { in: ids } }, orderBy: { id: "asc" } });
  assert.deepEqual(written, after, "the rows returned are the rows as stored");
  assert.deepEqual(
    after.map((a) => a.version),
    before.map((b) => b.version + 1),
    "every version bumped once",
  );
  assert.equal(after[1]!.bytesTotal, 2n ** 40n + 1n);
  assert.equal(after[2]!.displayName, "renamed");
  // A stale version is a conflict, and nothing of that transaction is written.
  await assert.rejects(
    db.prisma.$transaction((tx) => updateJobs(tx, [{ expected: after[0]!, data: { errorCount: 9 } }, { expected: before[1]!, data: { errorCount: 9 } }])),
    (err: unknown) => err instanceof ConflictError && err.jobId === before[1]!.id,
  );
  assert.equal((await db.prisma.job.findUnique({ where: { id: after[0]!.id } }))!.errorCount, after[0]!.errorCount);
}

/**
 * The driver transaction (Database.transaction) and updateJobsScript: several statements per
 * message with their rows, the compare-and-set in one message, COMMIT with the last script, and a
 * failure anywhere rolls back everything, including what earlier scripts wrote.
 */
async function compareScripts(db: Database): Promise<void> {
  const ids = [randomUUID(), randomUUID()];
  for (const id of ids) await db.prisma.job.create({ data: { id, type: "DOWNLOAD", displayName: id.slice(0, 8), owner: "dave" } });
  const before = await db.prisma.job.findMany({ where: { id: { in: ids } }, orderBy: { id: "asc" } });
  const at = new Date("2026-11-26T14:15:16.789Z");
  const written = await db.transaction(async (tx) => {
    const [one, two] = await tx.script(`SELECT 1 AS a; SELECT ${sqlLiteral("it's ✓")} AS b UNION ALL SELECT 'x'`);
    assert.deepEqual(one, [{ a: 1 }]);
    assert.deepEqual(two, [{ b: "it's ✓" }, { b: "x" }], "literals survive quotes and non-ASCII");
    const w = await updateJobsScript(tx, [
      { expected: before[0]!, data: { state: "QUEUED", bytesTransferred: 2n ** 41n, modifiedAt: at, errorMessage: `quote ' and backslash \\ ✓` } },
      { expected: before[1]!, data: { state: "ERROR", errorCount: 3, modifiedAt: at } },
    ]);
    const [last] = await tx.script(`SELECT count(*)::int AS n FROM job WHERE id IN (${ids.map((i) => sqlLiteral(i)).join(", ")})`, { commit: true });
    assert.deepEqual(last, [{ n: 2 }], "the rows of the committing script, COMMIT's own result left out");
    return w;
  });
  const after = await db.prisma.job.findMany({ where: { id: { in: ids } }, orderBy: { id: "asc" } });
  assert.deepEqual(written, after, "updateJobsScript returns the rows as stored, typed as the model API types them");
  assert.equal(after[0]!.errorMessage, `quote ' and backslash \\ ✓`);
  assert.deepEqual(after.map((a) => a.version), before.map((b) => b.version + 1));

  // A stale version: ConflictError, and the transaction's earlier writes are rolled back.
  await assert.rejects(
    db.transaction(async (tx) => {
      await tx.script(`UPDATE job SET description = 'should not stay' WHERE id = ${sqlLiteral(ids[0]!)}`);
      await updateJobsScript(tx, [{ expected: before[1]!, data: { errorCount: 9 } }]);
    }),
    (err: unknown) => err instanceof ConflictError && err.jobId === before[1]!.id,
  );
  // A failing statement in the committing script: nothing of the transaction stays.
  await assert.rejects(
    db.transaction(async (tx) => {
      await tx.script(`UPDATE job SET description = 'should not stay' WHERE id = ${sqlLiteral(ids[0]!)}`);
      await tx.script(`UPDATE job SET description = 'nor this' WHERE id = ${sqlLiteral(ids[1]!)}; SELECT 1 / (SELECT count(*) - count(*) FROM job)`, { commit: true });
    }),
    /division by zero/,
  );
  const final = await db.prisma.job.findMany({ where: { id: { in: ids } }, orderBy: { id: "asc" } });
  assert.deepEqual(final, after, "rolled back whole");
  // The connection is usable afterwards (Postgres: back in the pool, not left in a failed transaction).
  assert.deepEqual(await db.transaction((tx) => tx.script("SELECT 2 AS b", { commit: true })), [[{ b: 2 }]]);
  // Every driver transaction bounds its statements (what Prisma's transaction timeout did).
  assert.deepEqual(await db.transaction((tx) => tx.script("SHOW statement_timeout")), [[{ statement_timeout: "15s" }]]);
  assert.equal(TRANSACTION_STATEMENT_TIMEOUT_MS, 15_000);
}

test("lockJobs and updateJobs rows equal the model API's rows (Postgres)", async () => {
  const t = await createTestDatabase();
  const db = await openDatabase({ databaseUrl: t.url, dataDir: "", migrate: false });
  try {
    await compare(db);
    await compareUpdates(db);
    await compareScripts(db);
  } finally {
    await db.close();
    await t.drop();
  }
});

test("lockJobs and updateJobs rows equal the model API's rows (embedded PGlite)", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "haul-rows-"));
  const db = await openDatabase({ databaseUrl: null, dataDir: dir });
  try {
    await compare(db);
    await compareUpdates(db);
    await compareScripts(db);
  } finally {
    await db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
