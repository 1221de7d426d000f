// jobs.totalCount is capped (src/store/job-counts.ts): exact below the cap, the cap at or above it,
// with the same conditions (states, owner) as the page query. Rows are seeded with SQL, not the API.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, ok, gql, codeOf } from "../helpers/server.js";
import { cappedJobCount } from "../../src/store/job-counts.js";
import { TOTAL_COUNT_CAP } from "../../src/graphql/schema/job.js";
import { JOB_STATES, isFinal } from "../../src/domain/job-state.js";
import type { JobState } from "../../src/generated/prisma/client.js";

let s: Awaited<ReturnType<typeof startServer>>;

// n jobs of `owner` in `state`, created one millisecond apart
async function seed(n: number, owner: string, state: JobState): Promise<void> {
  await s.db.prisma.$executeRawUnsafe(
    `INSERT INTO job (id, type, display_name, owner, state, created_at)
     SELECT gen_random_uuid(), 'DOWNLOAD', 'seeded ' || g, $1, $2::"JobState", now() - g * interval '1 millisecond'
       FROM generate_series(1, $3::int) g`,
    owner,
    state,
    n,
  );
}

before(async () => {
  s = await startServer();
  await seed(7, "alice", "SUSPENDED");
  await seed(3, "alice", "QUEUED");
  await seed(4, "alice", "CANCELLED");
  await seed(5, "bob", "SUSPENDED");
  await seed(2, "bob", "ERROR");
  await seed(6, "bob", "ACKNOWLEDGED");
});
after(async () => {
  await s?.close();
});

test("cappedJobCount equals the real count below the cap and the cap above it, for every filter", async () => {
  const filters: { states: JobState[]; owner?: string }[] = [
    { states: ["SUSPENDED"] },
    { states: ["SUSPENDED"], owner: "alice" },
    { states: ["SUSPENDED"], owner: "bob" },
    { states: ["SUSPENDED"], owner: "nobody" },
    { states: ["QUEUED", "ERROR"] },
    { states: ["CANCELLED", "ACKNOWLEDGED"], owner: "bob" },
    { states: JOB_STATES.filter((st) => !isFinal(st)) },
    { states: [...JOB_STATES] },
    { states: [...JOB_STATES], owner: "alice" },
    { states: ["TRANSFERRING"] },
  ];
  for (const f of filters) {
    const real = await s.db.prisma.job.count({ where: { state: { in: f.states }, ...(f.owner !== undefined ? { owner: f.owner } : {}) } });
    for (const cap of [0, 1, 2, 5, real - 1, real, real + 1, 10_000]) {
      if (cap < 0) continue;
      const got = await cappedJobCount(s.db.prisma, f, cap);
      assert.equal(got, Math.min(real, cap), `${JSON.stringify(f)} cap ${cap}: real count ${real}`);
    }
  }
  assert.equal(await cappedJobCount(s.db.prisma, { states: [] }, 10), 0);
  // a user name is a parameter, never SQL
  assert.equal(await cappedJobCount(s.db.prisma, { states: ["SUSPENDED"], owner: "x' OR '1'='1" }, 10), 0);
});

test("jobs.totalCount: exact below the cap, the cap above it, scoped as the page is", async () => {
  const q = `query($f: JobFilter) { jobs(first: 2, filter: $f) { totalCount edges { node { id } } } }`;
  const admin = (f: Record<string, unknown>) => ok(s.graphqlUrl, q, { f }, s.adminToken);
  assert.equal((await admin({ allUsers: true, states: ["SUSPENDED"] })).jobs.totalCount, 12);
  assert.equal((await admin({ owner: "bob", states: ["SUSPENDED", "ERROR"] })).jobs.totalCount, 7);
  assert.equal((await admin({ allUsers: true })).jobs.totalCount, 17, "no states: every unfinished job");
  assert.equal((await admin({ allUsers: true, states: ["CANCELLED", "ACKNOWLEDGED"] })).jobs.totalCount, 10);
  // a USER counts its own jobs only (the test user "local" has none of the seeded ones)
  assert.equal((await ok(s.graphqlUrl, q, { f: { states: ["SUSPENDED"] } })).jobs.totalCount, 0);
  assert.equal(codeOf(await gql(s.graphqlUrl, q, { f: { allUsers: true } })), "FORBIDDEN");

  await seed(TOTAL_COUNT_CAP + 5, "carol", "QUEUED");
  assert.equal((await admin({ owner: "carol", states: ["QUEUED"] })).jobs.totalCount, TOTAL_COUNT_CAP);
  assert.equal((await admin({ allUsers: true, states: ["QUEUED"] })).jobs.totalCount, TOTAL_COUNT_CAP);
  assert.equal((await admin({ allUsers: true, states: ["SUSPENDED"] })).jobs.totalCount, 12, "other states unaffected");
});

