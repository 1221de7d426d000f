// The read path's own code: jobs.totalCount capped (src/store/job-counts.ts: exact below the cap,
// the cap at or above it, with the same conditions as the page query), and the column-narrowed
// reads of job(id) and jobs (src/graphql/schema/job-select.ts, src/store/job-reads.ts), which must
// answer exactly what the full-row Prisma path (node(id)) answers. Rows are seeded with SQL.
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

const EVERY_JOB_FIELD = `__typename id uuid displayName description type priority state owner errorCount minimumRetryDelay noProgressTimeout
  maximumDownloadTime retryAt maxBytesPerSecond hasCredentials httpHeaderNames
  progress { bytesTotal bytesTransferred filesTotal filesTransferred }
  times { createdAt modifiedAt transferCompletedAt }
  error { context code message httpStatus file { id localPath } }`;

test("job(id), narrowed to the selected columns, answers exactly what node(id) (every column through Prisma) answers", async () => {
  const created = await ok(
    s.graphqlUrl,
    `mutation($input: CreateJobInput!) { createJob(input: $input) { job { id uuid files { edges { node { id uuid } } } } } }`,
    {
      input: {
        displayName: "narrow \u00e9 \"quoted\"",
        description: "d",
        priority: "HIGH",
        maxBytesPerSecond: "123456789012",
        httpHeaders: [{ name: "X-One", value: "1" }, { name: "X-Two", value: "2" }],
        credentials: { username: "u", password: "p" },
        files: [{ remoteUrl: "http://127.0.0.1:9/a", localPath: "narrow/a" }, { remoteUrl: "http://127.0.0.1:9/b", localPath: "narrow/b" }],
      },
    },
  );
  const job = created.createJob.job;
  const fileUuid = job.files.edges[1].node.uuid;
  // values the API cannot set: an error on a file, byte counts past 2^53, timestamps
  await s.db.prisma.$executeRawUnsafe(
    `UPDATE job SET state = 'ERROR', error_context = 'REMOTE_FILE', error_code = 'HTTP_404', error_message = 'gone', error_file_id = $2::uuid,
       error_http_status = 404, error_count = 3, bytes_total = 18014398509481985, bytes_transferred = 9007199254740993, files_transferred = 1,
       retry_at = now(), transfer_completed_at = now() WHERE id = $1::uuid`,
    job.uuid,
    fileUuid,
  );
  const variants = [
    EVERY_JOB_FIELD,
    "id",
    "state owner",
    "... on Job { displayName progress { bytesTransferred } }",
    "...F",
    `${EVERY_JOB_FIELD} files { totalCount edges { node { uuid localPath } } }`,
  ];
  for (const sel of variants) {
    const frag = sel === "...F" ? " fragment F on Job { times { createdAt } error { code file { uuid } } maxBytesPerSecond }" : "";
    for (const id of [job.id, job.uuid]) {
      const viaJob = await ok(s.graphqlUrl, `query($id: ID!) { j: job(id: $id) { ${sel} } }${frag}`, { id });
      const viaNode = await ok(s.graphqlUrl, `query($id: ID!) { j: node(id: $id) { ... on Job { ${sel} } } }${frag}`, { id: job.id });
      assert.equal(JSON.stringify(viaJob), JSON.stringify(viaNode), sel);
    }
  }
  const all = await ok(s.graphqlUrl, `query($id: ID!) { job(id: $id) { ${EVERY_JOB_FIELD} } }`, { id: job.id });
  assert.equal(all.job.progress.bytesTransferred, "9007199254740993");
  assert.equal(all.job.maxBytesPerSecond, "123456789012");
  assert.deepEqual(all.job.httpHeaderNames, ["X-One", "X-Two"]);
  assert.equal(all.job.hasCredentials, true);
  assert.equal(all.job.error.file.localPath, "narrow/b");

  // The list answers what the full rows answer too.
  const page = (sel: string) =>
    ok(s.graphqlUrl, `{ jobs(first: 5, filter: { states: [ERROR] }) { totalCount edges { cursor node { ${sel} } } } }`);
  const narrowed = await page(`${EVERY_JOB_FIELD} files { totalCount edges { cursor node { uuid localPath bytesTransferred } } }`);
  assert.equal(narrowed.jobs.edges.length, 1);
  const viaNode = await ok(s.graphqlUrl, `query($id: ID!) { node(id: $id) { ... on Job { ${EVERY_JOB_FIELD} files { totalCount edges { cursor node { uuid localPath bytesTransferred } } } } } }`, { id: job.id });
  assert.equal(JSON.stringify(narrowed.jobs.edges[0].node), JSON.stringify(viaNode.node));

  // Another user's job is null, exactly as a job that does not exist.
  const bob = await s.app.tokens.create({ user: "bob", role: "USER" }, null);
  const asBob = await gql(s.graphqlUrl, `query($id: ID!) { job(id: $id) { id state } }`, { id: job.id }, bob.token);
  const missing = await gql(s.graphqlUrl, `query($id: ID!) { job(id: $id) { id state } }`, { id: "Sm9iOjAwMDAwMDAwLTAwMDAtNDAwMC04MDAwLTAwMDAwMDAwMDAwMA==" }, bob.token);
  assert.equal(JSON.stringify(asBob), JSON.stringify(missing));
  assert.equal(JSON.stringify(asBob), `{"data":{"job":null}}`);
});
