// The `jobs` connection's direct read (src/graphql/schema/job-page.ts) against the Pothos path it
// replaces for recognised shapes: every answer (data and errors) byte for byte, for filters,
// cursors (good, stale, foreign, forged), page sizes, pageInfo, the capped totalCount, files
// pagination and every Job and File field. The reference is the same document with
// `edges @include(if: true)`, which the direct read does not recognise (the statements each one
// ran are checked, so the comparison cannot silently compare the direct read with itself).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../helpers/server.js";
import { authHeader } from "../helpers/auth.js";

let s: Awaited<ReturnType<typeof startServer>>;
const statements: string[] = [];

async function raw(query: string, variables: Record<string, unknown>, token: string): Promise<string> {
  const res = await fetch(s.graphqlUrl, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/graphql-response+json, application/json", ...authHeader(s.graphqlUrl, token) },
    body: JSON.stringify({ query, variables }),
  });
  return `${res.status} ${await res.text()}`;
}

// n jobs of `owner` in `state`, one millisecond apart (pairs share a created_at when `ties`), with
// (g % 5) files each and varied columns: errors, byte counts past 2^53, nulls, dates.
async function seed(n: number, owner: string, state: string, base: number, ties = false): Promise<void> {
  await s.db.prisma.$executeRawUnsafe(
    `WITH j AS (
       INSERT INTO job (id, type, display_name, description, owner, state, created_at, modified_at, priority, error_count,
                        bytes_total, bytes_transferred, files_total, files_transferred, retry_at, transfer_completed_at, max_bytes_per_second,
                        error_context, error_code, error_message, error_http_status, http_headers, http_credentials)
       SELECT gen_random_uuid(), 'DOWNLOAD', 'job ' || $1 || ' ' || g || ' "q" \u00e9', CASE WHEN g % 2 = 0 THEN 'd' || g ELSE '' END, $1, $2::"JobState",
              timestamptz '2026-01-01' + ($4::int + CASE WHEN $5::bool THEN g / 2 ELSE g END) * interval '1 millisecond' + interval '0.123 second',
              timestamptz '2026-02-01' + g * interval '1 second', (ARRAY['FOREGROUND','HIGH','NORMAL','LOW'])[1 + g % 4]::"JobPriority", g % 3,
              CASE WHEN g % 3 = 0 THEN NULL ELSE 18014398509481985 + g END, 9007199254740993 + g, g % 5, g % 2,
              CASE WHEN g % 4 = 1 THEN timestamptz '2026-03-01' + g * interval '1 minute' END,
              CASE WHEN g % 4 = 2 THEN timestamptz '2026-03-02' + g * interval '1 minute' END,
              CASE WHEN g % 2 = 1 THEN 1048576 * g END,
              CASE WHEN g % 3 = 1 THEN 'REMOTE_FILE'::"ErrorContext" END, CASE WHEN g % 3 = 1 THEN 'HTTP_404' END,
              CASE WHEN g % 3 = 1 THEN 'gone ' || g END, CASE WHEN g % 3 = 1 THEN 404 END,
              CASE WHEN g % 2 = 0 THEN '[{"name":"X-A","value":"1"},{"name":"X-B","value":"2"}]'::jsonb END,
              CASE WHEN g % 5 = 0 THEN '{"username":"u","password":"p"}'::jsonb END
         FROM generate_series(1, $3::int) g
       RETURNING id, files_total)
     INSERT INTO file (id, job_id, position, remote_url, local_path, bytes_total, bytes_transferred, transferred, completed, sha256)
     SELECT gen_random_uuid(), j.id, p, 'http://127.0.0.1:9/' || p, 'dir/' || j.id || '/' || p,
            CASE WHEN p % 2 = 0 THEN 9007199254740993 + p END, p * 1000, p % 2 = 1, p % 3 = 1, CASE WHEN p = 2 THEN repeat('ab', 32) END
       FROM j, generate_series(0, j.files_total - 1) p`,
    owner,
    state,
    n,
    base,
    ties,
  );
}

before(async () => {
  s = await startServer({ onQuery: (q) => statements.push(q) });
  await seed(9, "local", "SUSPENDED", 0, true);
  await seed(4, "local", "ERROR", 100);
  await seed(3, "local", "QUEUED", 50);
  await seed(2, "local", "CANCELLED", 200);
  await seed(5, "bob", "SUSPENDED", 20);
  await seed(3, "bob", "TRANSIENT_ERROR", 300);
  // error_file_id on one job (error.file goes through its own resolver on both paths)
  await s.db.prisma.$executeRawUnsafe(
    `UPDATE job SET error_file_id = (SELECT f.id FROM file f WHERE f.job_id = job.id ORDER BY position LIMIT 1)
      WHERE id = (SELECT id FROM job WHERE owner = 'local' AND state = 'ERROR' AND files_total > 0 ORDER BY created_at LIMIT 1)`,
  );
});
after(async () => {
  await s?.close();
});

const JOB = `__typename id uuid displayName description type priority state owner errorCount minimumRetryDelay noProgressTimeout
  maximumDownloadTime retryAt maxBytesPerSecond hasCredentials httpHeaderNames
  progress { bytesTotal bytesTransferred filesTotal filesTransferred }
  times { createdAt modifiedAt transferCompletedAt }
  error { context code message httpStatus file { uuid localPath } }`;
const FILE = `__typename id uuid remoteUrl localPath position bytesTotal bytesTransferred transferred completed sha256`;

/** A `jobs` document; `mark` goes after the connection's `edges` (the reference passes a directive). */
type Doc = (mark: string) => string;
const docs: Record<string, Doc> = {
  everything: (m) => `query($first: Int, $after: String, $filter: JobFilter, $ff: Int) { jobs(first: $first, after: $after, filter: $filter) {
      __typename totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges${m} { __typename cursor node { ${JOB} files(first: $ff) { __typename totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { ${FILE} } } } } } } }`,
  bench: (m) => `query($first: Int, $after: String, $filter: JobFilter, $ff: Int) { jobs(first: $first, after: $after, filter: $filter) { edges${m} { node { id displayName state progress { bytesTransferred } files(first: $ff) { edges { node { id localPath bytesTransferred } } } } } } }`,
  noFiles: (m) => `query($first: Int, $after: String, $filter: JobFilter) { jobs(first: $first, after: $after, filter: $filter) { pageInfo { endCursor hasNextPage } edges${m} { cursor node { id state times { createdAt } } } } }`,
  fragments: (m) => `query($first: Int, $after: String, $filter: JobFilter, $ff: Int) { list: jobs(first: $first, after: $after, filter: $filter) { ...C } }
    fragment C on JobConnection { totalCount edges${m} { ... on JobEdge { cursor node { ...J } } } }
    fragment J on Job { uuid ... on Job { error { code } } files(first: $ff) { ...F } }
    fragment F on FileConnection { totalCount pageInfo { hasNextPage } edges { node { uuid bytesTotal } } }`,
};

const forged = [
  "garbage",
  Buffer.from("GPC:S:not-a-uuid").toString("base64"),
  Buffer.from("GPC:S:00000000-0000-4000-8000-00000000000").toString("base64"),
  Buffer.from("GPC:S:00000000-0000-4000-8000-00000000000a").toString("base64") + "=", // decodes, but not canonically
  `${Buffer.from("GPC:S:00000000-0000-4000-8000-000000000000").toString("base64")}\n`,
  Buffer.from("GPC:N:5").toString("base64"),
  "x".repeat(200),
];

test("jobs: the direct read answers exactly what the Pothos path answers", async () => {
  const admin = s.adminToken;
  const user = s.userToken;
  const bob = (await s.app.tokens.create({ user: "bob", role: "USER" }, null)).token;

  // cursors to page with: one of local's SUSPENDED jobs, one of bob's, one of a job of another state, one of no job
  const all = JSON.parse((await raw(`{ jobs(first: 200, filter: { allUsers: true, states: [SUSPENDED, ERROR, QUEUED, CANCELLED, TRANSIENT_ERROR] }) { edges { cursor node { owner state } } } }`, {}, admin)).slice(4));
  const edges = all.data.jobs.edges as { cursor: string; node: { owner: string; state: string } }[];
  assert.equal(edges.length, 26);
  const cur = (owner: string, state: string, i = 0) => edges.filter((e) => e.node.owner === owner && e.node.state === state)[i]!.cursor;
  const missing = Buffer.from("GPC:S:00000000-0000-4000-8000-000000000000").toString("base64");
  const cursors = [undefined, cur("local", "SUSPENDED", 0), cur("local", "SUSPENDED", 3), cur("local", "SUSPENDED", 8), cur("bob", "SUSPENDED", 1), cur("local", "ERROR", 1), cur("local", "CANCELLED"), missing];
  const filters = [
    undefined,
    {},
    { states: ["SUSPENDED"] },
    { states: ["ERROR", "QUEUED"] },
    { states: ["CANCELLED"] },
    { allUsers: true },
    { allUsers: true, states: ["SUSPENDED", "TRANSIENT_ERROR"] },
    { allUsers: true, owner: "bob" },
    { owner: "bob" },
    { owner: "local" },
    { owner: "nobody" },
    { owner: "bad name!" },
    { states: [] },
  ];
  const tokens: [string, string][] = [["admin", admin], ["user", user], ["bob", bob]];

  let compared = 0;
  const compare = async (doc: string, name: string, variables: Record<string, unknown>, token: [string, string]) => {
    statements.length = 0;
    const fast = await raw(docs[doc]!(""), variables, token[1]);
    const fastSql = statements.splice(0);
    const reference = await raw(docs[doc]!(" @include(if: true)"), variables, token[1]);
    const refSql = statements.splice(0);
    assert.equal(fast, reference, `${doc} ${name} as ${token[0]} ${JSON.stringify(variables)}`);
    compared++;
    // the direct read never goes through Prisma's page query; the reference always does (when it reads at all)
    assert.ok(!fastSql.some((q) => /"public"\."job"/.test(q) && /ORDER BY/.test(q)), `${doc} ${JSON.stringify(variables)}: ${fastSql.join("\n")}`);
    if (refSql.length && fast.includes('"edges":[{')) assert.ok(refSql.some((q) => /"public"\."job"/.test(q)), refSql.join("\n"));
    return fast;
  };

  for (const token of tokens) {
    for (const filter of filters) {
      for (const after of cursors) {
        for (const first of [undefined, 0, 1, 2, 5, 500]) {
          await compare("everything", "", { first, after, filter, ff: first === 0 ? 0 : first === 1 ? 2 : undefined }, token);
        }
      }
    }
  }
  for (const doc of ["bench", "noFiles", "fragments"]) {
    for (const token of tokens) {
      for (const filter of [undefined, { allUsers: true }, { states: ["ERROR", "SUSPENDED"] }]) {
        for (const after of [undefined, cursors[2], missing]) {
          for (const ff of [undefined, 0, 1, 3, 4, 300]) await compare(doc, "", { first: 4, after, filter, ff }, token);
        }
      }
    }
  }
  // forged and invalid arguments keep their errors
  for (const [i, after] of forged.entries()) {
    const out = await compare("everything", "forged", { after }, ["user", user]);
    assert.match(out, /BAD_USER_INPUT/, `${i}: ${out}`);
  }
  for (const v of [{ first: -1 }, { ff: -1 }, { filter: { allUsers: true } }, { filter: { owner: "bob" } }]) {
    const out = await compare("everything", "invalid", v, ["user", user]);
    assert.match(out, /"errors"/, out);
  }
  // no token at all
  assert.equal(await raw(docs.bench!(""), {}, ""), await raw(docs.bench!(" @include(if: true)"), {}, ""));
  assert.ok(compared > 1000, `${compared}`);

  // spot checks of what was compared
  const page = JSON.parse((await raw(docs.everything!(""), { first: 3, filter: { states: ["SUSPENDED"] }, ff: 2 }, user)).slice(4)).data.jobs;
  assert.equal(page.totalCount, 9);
  assert.equal(page.pageInfo.hasNextPage, true);
  assert.ok(page.edges.some((e: any) => e.node.progress.bytesTransferred > "9007199254740993"));
  assert.ok(page.edges.some((e: any) => e.node.files.pageInfo.hasNextPage));
});

test("jobs: the direct read takes three statements for a page with totalCount and files, the same as before", async () => {
  statements.length = 0;
  const out = await raw(docs.everything!(""), { first: 50, filter: { allUsers: true } }, s.adminToken);
  assert.match(out, /^200 /);
  // (the token cache's own reads and writes, and the event feed's, are not part of the page)
  const page = statements.filter((q) => !/job_event|api_token/.test(q));
  assert.equal(page.length, 4, page.join("\n")); // page, files, count + error.file's own lookup
  assert.equal(page.filter((q) => /FROM job\b|FROM file\b|FROM \(SELECT/.test(q)).length, 3, page.join("\n"));
});
