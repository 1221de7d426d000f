// Property-based test (fast-check): hostile inputs (paths, URLs, long strings, unicode, huge lists,
// out-of-range numbers, malformed ids and cursors) thrown at the mutations of a real server (API
// only: nothing is fetched). Every response must be a success or carry a documented error code,
// never INTERNAL, never leak internals; a refusal must leave the database untouched; nothing may be
// written outside the storage root, and inside it only under <storage root>/<user>/.
//
//   HAUL_FUZZ_SEED=123 npm test -- test/integration/fuzz.test.ts   replays one run
//   HAUL_FUZZ_RUNS=2   ...                                          scales the number of runs
//
// The "found by fuzzing" cases near the end are minimal examples the fuzzer found, kept as regular
// tests. "fuzz runs executed" (printed at the end) counts every property execution, shrinking included.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import net from "node:net";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { startServer } from "../helpers/server.js";
import { ERROR_CODES } from "../../src/graphql/errors.js";

// ---- set-up: a fuzz root holding the storage root and, beside it (outside), a canary directory ------

const SEED = process.env.HAUL_FUZZ_SEED ? Number(process.env.HAUL_FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
const SCALE = process.env.HAUL_FUZZ_RUNS ? Number(process.env.HAUL_FUZZ_RUNS) : 1;
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));

const FUZZ_ROOT = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "haul-fuzz-")));
const STORAGE = path.join(FUZZ_ROOT, "storage");
const CANARY = path.join(FUZZ_ROOT, `canary-${randomUUID().slice(0, 8)}`);
/** A marker in generated path segments: found anywhere outside the storage root, something escaped. */
const MARK = `fzmk${process.pid.toString(36)}`;
/** The users whose directories may appear under the storage root (the only principals that create jobs). */
const USERS = new Set(["local", "admin"]);
/** Symbolic links planted under <storage>/<user> (for each user) that point outside the storage root. */
const SYMLINKS = ["escape", "lnkfile", "realdir/deeplink"];

/** Documented codes (src/graphql/errors.ts and api.md) a refusal may carry. INTERNAL is never acceptable. */
const DOCUMENTED = new Set<string>([
  ...Object.keys(ERROR_CODES),
  "GRAPHQL_PARSE_FAILED",
  "GRAPHQL_VALIDATION_FAILED",
  "QUERY_TOO_COMPLEX",
  "REQUEST_ENTITY_TOO_LARGE",
  "BAD_REQUEST",
]);
DOCUMENTED.delete("INTERNAL");
/**
 * The codes of the errors a resolver raised (they have a `path`); errors without one refused the
 * request before it ran (parse, validation, variable coercion, limits) and may come first.
 */
function resolverCodes(body: any): string[] {
  return ((body?.errors ?? []) as any[]).filter((e) => e?.path?.length).map((e) => String(e?.extensions?.code));
}
/** Without a valid token: UNAUTHENTICATED, or refused before it ran. */
function unauthenticated(body: any): boolean {
  return body?.errors?.length > 0 && resolverCodes(body).every((c) => c === "UNAUTHENTICATED");
}
/** Another user's job, or a malformed id: indistinguishable from a missing job (or the argument is malformed). */
function missing(body: any, also: string[] = []): boolean {
  return body?.errors?.length > 0 && resolverCodes(body).every((c) => c === "NOT_FOUND" || c === "BAD_USER_INPUT" || also.includes(c));
}

let s: Awaited<ReturnType<typeof startServer>>;
let url: string;
let fixtures: { otherJob: string; cancelledJob: string; ownJobWithFile: string; realCursor: string };
let outsideBefore: { tmp: string[]; cwd: string[]; root: string[] };
let canaryBefore: string[];
let executed = 0;
const executedBy: Record<string, number> = {};

function count(name: string): void {
  executed++;
  executedBy[name] = (executedBy[name] ?? 0) + 1;
}

/** Every entry under `dir` (not following links): "rel/path type size". */
function tree(dir: string, rel = ""): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(path.join(dir, rel), { withFileTypes: true });
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const e of entries) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    const st = fs.lstatSync(path.join(dir, r));
    out.push(`${r} ${st.isSymbolicLink() ? "link" : st.isDirectory() ? "dir" : "file"} ${st.isFile() ? st.size : ""}`);
    if (e.isDirectory()) out.push(...tree(dir, r));
  }
  return out.sort();
}

function names(dir: string): string[] {
  try {
    return fs.readdirSync(dir).filter((n) => n.includes(MARK));
  } catch {
    return [];
  }
}

before(async () => {
  fs.mkdirSync(CANARY);
  fs.writeFileSync(path.join(CANARY, "secret.txt"), "canary\n");
  for (const user of USERS) {
    fs.mkdirSync(path.join(STORAGE, user, "realdir"), { recursive: true });
    fs.symlinkSync(CANARY, path.join(STORAGE, user, "escape"));
    fs.symlinkSync(path.join(CANARY, "secret.txt"), path.join(STORAGE, user, "lnkfile"));
    fs.symlinkSync(CANARY, path.join(STORAGE, user, "realdir", "deeplink"));
  }
  canaryBefore = tree(CANARY);
  outsideBefore = { tmp: names(os.tmpdir()), cwd: names(process.cwd()), root: names("/") };

  s = await startServer({ storageRoot: STORAGE });
  url = s.graphqlUrl;
  const create = async (input: Record<string, unknown>, token: string) => {
    const r = await send(`mutation($input: CreateJobInput!) { createJob(input: $input) { job { id } } }`, { input }, token);
    assert.equal(r.body?.errors, undefined, JSON.stringify(r.body));
    return r.body.data.createJob.job.id as string;
  };
  const otherJob = await create({ displayName: "admin's job", files: [{ remoteUrl: "http://127.0.0.1:9/o.bin", localPath: "fixture-other/o.bin" }] }, s.adminToken);
  const cancelledJob = await create({ displayName: "cancelled" }, s.userToken);
  await send(`mutation($id: ID!) { cancelJob(id: $id) { job { id } } }`, { id: cancelledJob }, s.userToken);
  const ownJobWithFile = await create({ displayName: "own", files: [{ remoteUrl: "http://127.0.0.1:9/f.bin", localPath: "fixture-own/f.bin" }] }, s.userToken);
  const page = await send(`{ jobs(first: 1) { edges { cursor } } }`, {}, s.userToken);
  fixtures = { otherJob, cancelledJob, ownJobWithFile, realCursor: page.body.data.jobs.edges[0].cursor };
  console.log(`# fuzz seed ${SEED} (replay with HAUL_FUZZ_SEED=${SEED}); fuzz root ${FUZZ_ROOT}`);
});

after(async () => {
  console.log(`# fuzz runs executed: ${executed} (${Object.entries(executedBy).map(([k, v]) => `${k} ${v}`).join(", ")}), seed ${SEED}`);
  await s?.close();
  fs.rmSync(FUZZ_ROOT, { recursive: true, force: true });
});

// ---- requests and the checks every response gets ----------------------------------------------------

interface Resp {
  status: number;
  body: any;
  text: string;
}

async function send(query: string, variables: unknown, token: string | null): Promise<Resp> {
  const res = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/graphql-response+json, application/json",
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify(variables === undefined ? { query } : { query, variables }),
  });
  const text = await res.text();
  let body: any = null;
  try {
    body = JSON.parse(text);
  } catch {
    /* checked by verdict */
  }
  return { status: res.status, body, text };
}

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const LEAKS: [RegExp, string][] = [
  [/prisma/i, "prisma"],
  [/\bSELECT\b/, "SQL"],
  [/invocation/i, "a Prisma invocation"],
  [/\bat \S+\.[cm]?[jt]s:\d+/, "a stack frame"],
  [/\.ts:\d+:\d+/, "a source position"],
  [new RegExp(REPO.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")), "the repository path"],
  [/node_modules/, "node_modules"],
  [/\bP20\d\d\b/, "a Prisma error code"],
  [/violates|constraint|relation "|column "|syntax error at or near/i, "a Postgres message"],
];

function short(v: unknown, n = 600): string {
  let t: string;
  try {
    t = JSON.stringify(v, (_k, x) => (typeof x === "string" && x.length > 120 ? `${x.slice(0, 120)}...(${x.length} chars)` : x));
  } catch {
    t = String(v);
  }
  return t.length > n ? `${t.slice(0, n)}...` : t;
}

/**
 * "ok" when the call succeeded (data[field] present, no errors), else the first error's code, after
 * checking every error: a documented code, not INTERNAL, no leak, no partial result.
 */
function verdict(r: Resp, field: string, what: string): string {
  const ctx = `${what}\n  -> HTTP ${r.status} ${r.text.slice(0, 800)}`;
  assert.ok(r.status < 500, `server error: ${ctx}`);
  assert.ok(r.body && typeof r.body === "object" && !Array.isArray(r.body), `not a JSON object: ${ctx}`);
  const errors = r.body.errors;
  if (errors === undefined || errors === null) {
    assert.ok(r.body.data && r.body.data[field] != null, `no errors and no ${field}: ${ctx}`);
    return "ok";
  }
  assert.ok(Array.isArray(errors) && errors.length > 0, `errors is not a non-empty list: ${ctx}`);
  for (const e of errors) {
    const code = e?.extensions?.code;
    assert.equal(typeof code, "string", `an error without extensions.code: ${ctx}`);
    assert.notEqual(code, "INTERNAL", `INTERNAL: ${ctx}`);
    assert.ok(DOCUMENTED.has(code), `undocumented code ${code}: ${ctx}`);
    assert.equal(typeof e.message, "string", `an error without a message: ${ctx}`);
    for (const [re, name] of LEAKS) assert.ok(!re.test(e.message), `the message leaks ${name}: ${ctx}`);
    const ext = JSON.stringify(e.extensions ?? {});
    assert.ok(!/"(stack|stacktrace|exception)"/.test(ext), `extensions leak a stack: ${ctx}`);
    for (const [re, name] of LEAKS) assert.ok(!re.test(ext), `extensions leak ${name}: ${ctx}`);
  }
  assert.ok(r.body.data == null || r.body.data[field] == null, `errors and a result: ${ctx}`);
  return errors[0].extensions.code as string;
}

/** A cheap fingerprint of everything a mutation could change. */
async function fingerprint(): Promise<string> {
  const rows = await s.db.prisma.$queryRawUnsafe<Record<string, string>[]>(`
    SELECT (SELECT count(*) FROM job)::text AS jobs,
           (SELECT coalesce(sum(version), 0) FROM job)::text AS versions,
           (SELECT coalesce(max(version), 0) FROM job)::text AS max_version,
           (SELECT coalesce(max(modified_at)::text, '') FROM job) AS modified,
           (SELECT string_agg(state::text || owner, ',' ORDER BY id) FROM job) AS states,
           (SELECT count(*) FROM file)::text AS files,
           (SELECT count(*) FILTER (WHERE completed) FROM file)::text AS completed,
           (SELECT coalesce(max(seq), 0) FROM job_event)::text AS seq,
           (SELECT count(*) FROM job_event)::text AS events,
           (SELECT count(*) FROM api_token)::text AS tokens,
           (SELECT count(*) FROM api_token WHERE revoked_at IS NOT NULL)::text AS revoked`);
  return JSON.stringify(rows[0]);
}

/** Files: only under <storage>/<user>/, the canary untouched, nothing else beside the storage root. */
function checkFilesystem(what: string): void {
  const top = fs.readdirSync(FUZZ_ROOT).sort();
  assert.deepEqual(top, ["storage", path.basename(CANARY)].sort(), `something appeared beside the storage root: ${top.join(", ")} after ${what}`);
  assert.deepEqual(tree(CANARY), canaryBefore, `the canary directory outside the storage root changed after ${what}`);
  for (const entry of tree(STORAGE)) {
    const rel = entry.split(" ")[0]!;
    const first = rel.split("/")[0]!;
    assert.ok(USERS.has(first), `${rel} under the storage root is not under a user's directory (after ${what})`);
    assert.ok(rel.includes("/") || entry.endsWith(" dir "), `${rel} is a file directly in the storage root (after ${what})`);
  }
}

/**
 * Sends a mutation, checks the response, the database on refusal and the file system; returns the
 * verdict and the response.
 */
async function probe(name: string, field: string, query: string, variables: unknown, token: string | null, shown: unknown): Promise<{ code: string; r: Resp; what: string }> {
  const before = await fingerprint();
  const r = await send(query, variables, token);
  const what = `${name}: ${short(shown)}`;
  const code = verdict(r, field, what);
  if (code !== "ok") assert.equal(await fingerprint(), before, `a refused call (${code}) changed the database: ${what}`);
  checkFilesystem(what);
  return { code, r, what };
}

const CANCEL = `mutation($id: ID!) { cancelJob(id: $id) { job { id state } } }`;

/** Cancels a job a run created (as admin: it may have changed owner), so quotas and destinations free up. */
async function cleanup(id: string): Promise<void> {
  const r = await send(CANCEL, { id }, s.adminToken);
  const code = verdict(r, "cancelJob", `cleanup cancel of ${id}`);
  assert.ok(code === "ok" || code === "INVALID_STATE", `cleanup cancel of ${id}: ${code}`);
}

async function createFresh(files = 0): Promise<string> {
  const r = await send(
    `mutation($input: CreateJobInput!) { createJob(input: $input) { job { id } } }`,
    {
      input: {
        displayName: "fresh",
        files: Array.from({ length: files }, (_, i) => ({ remoteUrl: `http://127.0.0.1:9/${i}.bin`, localPath: `${MARK}-fresh/${randomUUID()}/${i}.bin` })),
      },
    },
    s.userToken,
  );
  assert.equal(r.body?.errors, undefined, JSON.stringify(r.body));
  return r.body.data.createJob.job.id as string;
}

// ---- oracles: inputs the documented rules say must never be accepted -----------------------------------

/** A localPath that is absolute, has "..", NUL, a backslash, or leads through a planted symlink, or resolves outside. */
function pathMustFail(p: unknown): string | null {
  if (typeof p !== "string") return "not a string";
  if (p === "") return "empty";
  if (p.includes("\0")) return "NUL";
  if (p.includes("\\")) return "backslash";
  if (p.startsWith("/") || /^[A-Za-z]:/.test(p)) return "absolute";
  const segs = p.split("/");
  if (segs.some((x) => x === ".." || x === "." || x === "")) return "'..', '.' or empty segment";
  if (segs.some((x) => Buffer.byteLength(x) > 255) || p.length > 1024) return "too long";
  for (let i = 1; i <= segs.length; i++) if (SYMLINKS.includes(segs.slice(0, i).join("/"))) return "through a symlink";
  const base = path.join(STORAGE, "local");
  if (!path.resolve(base, p).startsWith(base + path.sep)) return "escapes";
  return null;
}

function ipv4Refused(b: number[], allowLoopback: boolean): boolean {
  const [a, c] = [b[0]!, b[1]!];
  if (a === 127) return !allowLoopback;
  return (
    a === 0 ||
    a === 10 ||
    (a === 100 && c >= 64 && c < 128) ||
    (a === 169 && c === 254) ||
    (a === 172 && c >= 16 && c < 32) ||
    (a === 192 && c === 0 && b[2] === 0) ||
    (a === 192 && c === 168) ||
    (a === 198 && (c === 18 || c === 19)) ||
    a >= 224
  );
}

function ipv6Bytes(h: string): number[] | null {
  let text = h;
  let tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    tail = v4[1]!.split(".").map(Number);
    text = text.slice(0, -v4[1]!.length) + "0:0";
  }
  const [head, rest] = text.split("::") as [string, string | undefined];
  const parse = (x: string) => (x === "" ? [] : x.split(":").map((g) => parseInt(g, 16)));
  const hs = parse(head);
  const rs = rest === undefined ? [] : parse(rest);
  const groups = rest === undefined ? hs : [...hs, ...Array(8 - hs.length - rs.length).fill(0), ...rs];
  if (groups.length !== 8) return null;
  const bytes = groups.flatMap((g) => [g >> 8, g & 255]);
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

/** A remote URL the documented rules refuse: not http(s), credentials, unparsable, or a refused IP literal. */
function urlMustFail(u: unknown): string | null {
  if (typeof u !== "string") return "not a string";
  if (u.length > 2200) return "longer than 2,200";
  let parsed: URL;
  try {
    parsed = new URL(u);
  } catch {
    return "not a URL";
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") return `scheme ${parsed.protocol}`;
  if (parsed.href.length > 2200) return "longer than 2,200 once normalised";
  if (parsed.username || parsed.password) return "credentials";
  const host = parsed.hostname.replace(/^\[|\]$/g, "");
  if (net.isIPv4(host)) return ipv4Refused(host.split(".").map(Number), true) ? "refused IPv4 literal" : null;
  if (net.isIPv6(host)) {
    const b = ipv6Bytes(host);
    if (!b) return null;
    const zero12 = b.slice(0, 12).every((x) => x === 0);
    if (b.every((x) => x === 0)) return "unspecified";
    if (zero12 && b[15] === 1 && b.slice(12, 15).every((x) => x === 0)) return null; // ::1, allowed in tests
    if (zero12) return ipv4Refused(b.slice(12), false) ? "IPv4-compatible" : null;
    if (b.slice(0, 10).every((x) => x === 0) && b[10] === 255 && b[11] === 255) return ipv4Refused(b.slice(12), true) ? "IPv4-mapped" : null;
    if (b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && b.slice(4, 12).every((x) => x === 0)) return ipv4Refused(b.slice(12), false) ? "NAT64" : null;
    if ((b[0]! & 0xfe) === 0xfc) return "ULA";
    if (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return "link-local";
    if (b[0] === 0xff) return "multicast";
    if (b[0] === 0x20 && b[1] === 0x01 && b[2] === 0x0d && b[3] === 0xb8) return "documentation";
  }
  return null;
}

function filesMustFail(files: unknown): string | null {
  if (!Array.isArray(files)) return null;
  for (const f of files as { remoteUrl?: unknown; localPath?: unknown }[]) {
    const why = urlMustFail(f.remoteUrl) ?? pathMustFail(f.localPath);
    if (why) return why;
  }
  return null;
}

// ---- arbitraries ----------------------------------------------------------------------------------------

const lone = fc.constantFrom("\ud800", "\udc00", "\ud83d", "\udfff", "a\ud800b");
const oddChars = fc.constantFrom(
  "\0", "\u0001", "\u001f", "\u007f", "\t", "\n", "\r", "\r\n", "\u0085", "\u2028", "\u202e", "\u200b", "\u200d", "\ufeff", "\u00a0",
  "😀", "👨‍👩‍👧", "e\u0301", "\u0301", "ﬁ", "\u212b", "\uffff", "\ufffd", "%00", "%2e%2e", "%2f", "\\", "'", '"', "`", "$(id)", "'; DROP TABLE job; --",
);
/** Unicode text of every kind, lone surrogates and control characters included. */
const wildString = (maxLength: number) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.string({ unit: "grapheme", maxLength }) },
    { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength }) },
    { weight: 3, arbitrary: fc.array(fc.oneof(oddChars, lone, fc.constant("\0"), fc.string({ maxLength: 4 })), { minLength: 1, maxLength: Math.min(maxLength, 12) }).map((a) => a.join("")) },
  );
/** A string of n repeats of one character around a limit (ASCII, 2-byte, astral, combining). */
const around = (limits: number[]) =>
  fc.tuple(fc.constantFrom(...limits), fc.integer({ min: -2, max: 2 }), fc.constantFrom("x", "é", "😀", "e\u0301", "\u0301", "\u200b", " ")).map(([n, d, c]) => c.repeat(Math.max(0, n + d)));

const segment = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom("..", ".", "", "...", ". .", "%2e%2e", "%2E%2E%2F", "..%2f", "..\\..", "\\", "C:", "c:\\windows", "con", "NUL", "COM1", "aux.txt", "~", "~root", "$HOME", "*", "?", "|", ":", "<>", "escape", "lnkfile", "realdir", "deeplink", MARK, ".git", "x.haul-part", ".x.haul-part", " ", "a ", "-rf") },
  { weight: 2, arbitrary: oddChars },
  { weight: 1, arbitrary: lone },
  { weight: 3, arbitrary: fc.stringMatching(/^[a-z0-9_.-]{1,10}$/) },
  { weight: 2, arbitrary: wildString(10) },
  { weight: 1, arbitrary: around([255, 256, 128, 1024, 10_000]) },
);
const hostilePath = fc
  .record({
    prefix: fc.constantFrom("", "", "", "", "/", "//", "./", "../", "../../../../", "C:/", "c:", "C:\\", "\\\\srv\\share\\", "\\", "~/", "/etc/", "/tmp/", "file:", "%2e%2e/", "\0", `${CANARY}/`, `${STORAGE}/`, `${STORAGE}/local/`),
    segs: fc.array(segment, { minLength: 1, maxLength: 6 }),
    sep: fc.constantFrom("/", "/", "/", "/", "//", "\\", "/./", "/../"),
    suffix: fc.constantFrom("", "", "", "", "/", "/.", "/..", "\0", "\\", " "),
  })
  .map(({ prefix, segs, sep, suffix }) => prefix + segs.join(sep) + suffix);
const goodPath = fc.tuple(fc.stringMatching(/^[a-z]{1,8}$/), fc.nat(1_000_000)).map(([a, n]) => `${MARK}/${a}/${n}.bin`);
const symlinkPath = fc.tuple(fc.constantFrom(...SYMLINKS), fc.constantFrom("", "/x", "/sub/x.bin", `/${MARK}`)).map(([l, t]) => l + t);
const localPath = fc.oneof(
  { weight: 3, arbitrary: goodPath },
  { weight: 6, arbitrary: hostilePath },
  { weight: 1, arbitrary: symlinkPath },
  { weight: 1, arbitrary: wildString(40) },
  { weight: 1, arbitrary: fc.constantFrom("x".repeat(10_000), "a/".repeat(600) + "b", "é".repeat(1024), "😀".repeat(600), `${"a".repeat(255)}/${"b".repeat(255)}/${"c".repeat(255)}/${"d".repeat(255)}/e`, "a/".repeat(511) + "b") },
);

const refusedHost = fc.constantFrom(
  "10.0.0.1", "10.255.255.255", "192.168.1.1", "172.16.0.1", "172.31.255.255", "169.254.169.254", "100.64.0.1", "0.0.0.0", "0.1.2.3", "224.0.0.1", "239.255.255.250",
  "255.255.255.255", "240.0.0.1", "192.0.0.8", "198.18.0.1", "[fe80::1]", "[fc00::1]", "[fd12:3456::1]", "[::ffff:10.0.0.1]", "[::ffff:a00:1]", "[::ffff:169.254.169.254]",
  "[::]", "[ff02::1]", "[64:ff9b::a00:1]", "[64:ff9b::7f00:1]", "[::127.0.0.1]", "[::10.0.0.1]", "[2001:db8::1]", "0x0a.0.0.1", "012.0.0.1", "167772161", "0xa9fea9fe",
  "10.1", "192.168.257", "[0:0:0:0:0:ffff:c0a8:0101]", "[::ffff:0.0.0.0]", "[::2]", "[fe80::1%25eth0]",
);
const host = fc.oneof(
  { weight: 3, arbitrary: refusedHost },
  { weight: 2, arbitrary: fc.constantFrom("127.0.0.1:9", "127.1.2.3", "localhost", "[::1]", "example.com", "ex ample.com", "bücher.example", "xn--bcher-kva.example", "😀.com", "a".repeat(64) + ".com", "ü".repeat(100) + ".com", "example.com:0", "example.com:99999", "example.com:-1", "", "%00", "exa\u0000mple.com", "example.com\\@evil.com", "evil.com#@example.com", "1.2.3.4", "[2606:4700::1]", "[::ffff:1.2.3.4]", "[::ffff:127.0.0.1]", "[64:ff9b::102:304]") },
  { weight: 1, arbitrary: fc.ipV4() },
  { weight: 1, arbitrary: fc.ipV6().map((a) => `[${a}]`) },
  { weight: 1, arbitrary: fc.domain() },
  { weight: 1, arbitrary: wildString(12) },
);
const urlPath = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom("/", "", "/x.bin", "/../../etc/passwd", "/%2e%2e/%2e%2e/", "/a b", "/\u0000", "/😀", "?q=1", "#frag", "/\r\nHost: evil", "/%0d%0aX: y", "/a\tb") },
  { weight: 2, arbitrary: wildString(20).map((x) => "/" + x) },
  { weight: 1, arbitrary: around([2180, 2190, 2200, 10_000, 1000, 700]).map((x) => "/" + x) },
);
const remoteUrl = fc.oneof(
  { weight: 3, arbitrary: fc.nat(1_000_000).map((n) => `http://127.0.0.1:9/${MARK}/${n}.bin`) },
  {
    weight: 8,
    arbitrary: fc
      .record({
        scheme: fc.constantFrom("http:", "http:", "http:", "https:", "https:", "HTTP:", "hTTps:", "file:", "ftp:", "gopher:", "data:", "javascript:", "ws:", "wss:", "about:", "blob:", "mailto:", "ssh:", "jar:", "view-source:", "", " http:"),
        slashes: fc.constantFrom("//", "//", "//", "/", "///", "\\\\", "", "/\\"),
        userinfo: fc.constantFrom("", "", "", "", "user@", "user:pass@", ":@", "a%40b:c@", "@", ":x@"),
        host,
        path: urlPath,
      })
      .map(({ scheme, slashes, userinfo, host, path }) => `${scheme}${slashes}${userinfo}${host}${path}`),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom("javascript:alert(1)", "data:text/plain;base64,SGVsbG8=", "file:///etc/passwd", "file://localhost/etc/passwd", " http://example.com/x ", "http:example.com", "http:/\\example.com", "//example.com/", "/relative", "", " ", "http://", "http://[::1", "\thttp://example.com/\n", "http://example.com/" + "ä".repeat(400), "http://" + "a".repeat(3000) + ".com/"),
  },
  { weight: 1, arbitrary: fc.webUrl({ validSchemes: ["http", "https", "ftp", "file"], withFragments: true, withQueryParameters: true }) },
  { weight: 1, arbitrary: wildString(40) },
);

const goodUrl = fc.oneof(fc.nat(1_000_000).map((n) => `http://127.0.0.1:9/${MARK}/${n}.bin`), fc.constantFrom("https://example.com/x.bin", "http://[::1]:9/y", "http://localhost:9/z?q=1"));
const sha256 = fc.oneof(
  fc.string({ unit: fc.constantFrom(..."0123456789abcdefABCDEF"), minLength: 64, maxLength: 64 }),
  fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: 63, maxLength: 65 }),
  fc.constantFrom("", "g".repeat(64), "٠".repeat(64), "A".repeat(64), " " + "a".repeat(63), "a".repeat(64) + "\0", null),
  wildString(70),
);
const validSha = fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: 64, maxLength: 64 });
const fileInput = focused({ remoteUrl: goodUrl, localPath: goodPath, sha256: validSha }, { remoteUrl, localPath, sha256 }, ["remoteUrl", "localPath"]);
/** A huge list, described (and shrunk) by its size; the predicate builds it. */
const hugeSpec = fc.record({ n: fc.constantFrom(0, 199, 200, 201, 500, 1000, 10_000), urlLength: fc.constantFrom(30, 30, 30, 2200) });
function hugeList(spec: { n: number; urlLength: number }, tag: string) {
  const pad = "p".repeat(Math.max(0, spec.urlLength - 40));
  return Array.from({ length: spec.n }, (_, i) => ({ remoteUrl: `http://127.0.0.1:9/${pad}${i}`, localPath: `${MARK}-${tag}/${i}.bin` }));
}
const filesArb = fc.oneof(
  { weight: 5, arbitrary: fc.array(fileInput, { minLength: 1, maxLength: 3 }).map((files) => ({ files, huge: null })) },
  { weight: 1, arbitrary: fc.array(fileInput, { maxLength: 1 }).map((files) => ({ files: [...files, ...files], huge: null })) }, // duplicates
  { weight: 1, arbitrary: hugeSpec.map((huge) => ({ files: null, huge })) },
);

const intish = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(-1, 0, 1, 4, 5, 6, 600, 2_147_483_647, -2_147_483_648, 2_147_483_648, -2_147_483_649, 1.5, -0.5, 1e10, 9_007_199_254_740_993, Number.MAX_SAFE_INTEGER, 1e308, -1e308) },
  { weight: 2, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>("5", "", null, true, [], {}, "1e3") },
);
const bigintish = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom<unknown>("-1", "0", "1", "1023", "1024", "1e9", "1.5", "", " 1024", "1024 ", "0x400", "+1024", "1125899906842624", "1125899906842625", "9".repeat(30), "1" + "0".repeat(39), "-" + "9".repeat(30), "٣٣٣٣", "1_000") },
  { weight: 2, arbitrary: fc.bigInt({ min: -(1n << 70n), max: 1n << 70n }).map(String) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(0, 1024, -1, 1.5, 1e20, 2 ** 53, null, true, {}, []) },
  { weight: 1, arbitrary: fc.integer() },
);
const headerName = fc.oneof(
  fc.constantFrom("X-Custom", "Accept", "Authorization", "Cookie", "Host", "host", "Content-Length", "Range", "Transfer-Encoding", "Connection", "TE", "Expect", "", "X A", "X:Y", "X-A\r\nInjected: 1", "ä", "a".repeat(100), "a".repeat(101), "\0", "X\n"),
  fc.stringMatching(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,20}$/),
  wildString(20),
);
const headerValue = fc.oneof(fc.constantFrom("ok", "a\r\nX-Injected: 1", "\n", "\r", "\0", "a\u0000b", "", " ", "\u2028"), around([8192]), wildString(30), lone);
const headers = fc.oneof(
  { weight: 4, arbitrary: fc.array(focused({ name: fc.stringMatching(/^X-[A-Za-z0-9-]{1,10}$/), value: fc.constant("v") }, { name: headerName, value: headerValue }, ["name", "value"]), { minLength: 1, maxLength: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom(49, 50, 51, 1000).map((n) => Array.from({ length: n }, (_, i) => ({ name: `X-H${i}`, value: "v" }))) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>([{ name: "X" }], [{ value: "v" }], "X-A: 1", [null]) },
);
const credentials = fc.oneof(
  focused(
    { username: fc.constant("u"), password: fc.constant("p") },
    {
      username: fc.oneof(fc.constantFrom("u", "", "a:b", "a\r\nb", "a\0", "\u00e9"), around([256]), wildString(20), lone),
      password: fc.oneof(fc.constantFrom("p", "", "a\nb", "\0", "pa:ss"), around([1024]), wildString(20), lone),
    },
    ["username", "password"],
  ),
  fc.constantFrom<unknown>({ username: "u" }, "user:pass", null),
);
const displayName = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom<unknown>("ok", "", " ", "\t\n", "\0", "a\0b", "\u202eevil", "\u200b", null, 5, ["a"]) },
  { weight: 3, arbitrary: around([256]) },
  { weight: 3, arbitrary: wildString(40) },
  { weight: 1, arbitrary: lone },
);
const description = fc.oneof(
  { weight: 3, arbitrary: around([1024]) },
  { weight: 3, arbitrary: wildString(60) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>("\0", "", null, 1, "x".repeat(100_000)) },
  { weight: 1, arbitrary: lone },
);
const priority = fc.constantFrom<unknown>("FOREGROUND", "HIGH", "NORMAL", "LOW", "URGENT", "", "normal", null, 1);
const jobType = fc.constantFrom<unknown>("DOWNLOAD", "UPLOAD", "UPLOAD_REPLY", "download", "FOO", null);

/**
 * An input object where one or two fields (the focus) are hostile and the others valid or absent, so
 * that a hostile value usually reaches the code behind the first check; now and then every field is
 * hostile at once.
 */
function focused<K extends string>(valid: Record<K, fc.Arbitrary<unknown>>, hostile: Record<K, fc.Arbitrary<unknown>>, required: readonly NoInfer<K>[] = []): fc.Arbitrary<Record<string, unknown>> {
  const keys = Object.keys(valid) as K[];
  const some = fc
    .record({ focus: fc.subarray(keys, { minLength: 1, maxLength: 2 }), present: fc.subarray(keys), v: fc.record(valid), h: fc.record(hostile) })
    .map(({ focus, present, v, h }) => {
      const out: Record<string, unknown> = {};
      for (const k of keys) {
        if (focus.includes(k)) out[k] = (h as Record<string, unknown>)[k];
        else if (required.includes(k) || present.includes(k)) out[k] = (v as Record<string, unknown>)[k];
      }
      return out;
    });
  const all = fc.record(hostile, { requiredKeys: [...required] }) as fc.Arbitrary<Record<string, unknown>>;
  return fc.oneof({ weight: 6, arbitrary: some }, { weight: 1, arbitrary: all });
}

const validText = (maxLength: number) => fc.string({ unit: "grapheme", minLength: 1, maxLength }).filter((x) => x.trim() !== "" && !/[\0\r\n]/.test(x));
const VALID_JOB = {
  displayName: validText(30),
  description: validText(50),
  type: fc.constant("DOWNLOAD"),
  priority: fc.constantFrom("FOREGROUND", "HIGH", "NORMAL", "LOW"),
  minimumRetryDelay: fc.nat(1_000_000),
  noProgressTimeout: fc.nat(1_000_000),
  maximumDownloadTime: fc.nat(1_000_000),
  maxBytesPerSecond: fc.bigInt({ min: 1024n, max: 1n << 50n }).map(String),
  httpHeaders: fc.array(fc.record({ name: fc.stringMatching(/^X-[A-Za-z0-9-]{1,10}$/), value: validText(20) }), { maxLength: 2 }),
  credentials: fc.record({ username: fc.stringMatching(/^[a-z]{1,10}$/), password: validText(20) }),
};
const { type: _type, ...VALID_UPDATE } = VALID_JOB;

const UUIDS = [randomUUID(), "00000000-0000-0000-0000-000000000000", "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"];
const b64 = (t: string) => Buffer.from(t, "utf8").toString("base64");
const hostileId = fc.oneof(
  { weight: 3, arbitrary: wildString(30) },
  { weight: 1, arbitrary: fc.uuid() },
  { weight: 1, arbitrary: fc.uuid().map((u) => b64(`Job:${u}`)) },
  { weight: 1, arbitrary: fc.uuid().map((u) => b64(`File:${u}`)) },
  { weight: 1, arbitrary: fc.uuid().map((u) => b64(`ApiToken:${u}`)) },
  { weight: 1, arbitrary: fc.uuid().map((u) => Buffer.from(`Job:${u}`).toString("base64url").replace(/=+$/, "")) },
  { weight: 1, arbitrary: wildString(20).map((t) => b64(`Job:${t}`)) },
  { weight: 1, arbitrary: wildString(20).map((t) => b64(t)) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      ...UUIDS, b64("Job:not-a-uuid"), b64("Job:"), b64(":"), b64("Job"), "Sm9iOg==", `Job:${UUIDS[0]}`, `{${UUIDS[0]}}`, `${UUIDS[0]} `, ` ${UUIDS[0]}`, `${UUIDS[0]}\0`,
      b64(`Job:${UUIDS[0]}\0`), b64(`Job:${UUIDS[0]}:extra`), b64(`Job:Job:${UUIDS[0]}`), "", " ", "=", "====", "a".repeat(201), "A".repeat(200), "../../etc/passwd", "1 OR 1=1", "'; DROP TABLE job; --", "%00", "null", "undefined", "0", "-1",
    ),
  },
);
const userName = fc.oneof(
  { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/) },
  { weight: 3, arbitrary: fc.constantFrom("", ".", "..", "../x", "a/b", "a\\b", "-a", ".hidden", "_x", "a".repeat(64), "a".repeat(65), "admin", "local", "a b", "a\0", "\0", "ä", "😀", "con", "a..b", "a/../b", "/abs", "storage", "A".repeat(1000), "a\n") },
  { weight: 2, arbitrary: wildString(20) },
);
const roleArb = fc.constantFrom<unknown>("USER", "USER", "ADMIN", "ROOT", "user", "", null);
const cursor = fc.oneof(
  { weight: 2, arbitrary: wildString(30) },
  { weight: 2, arbitrary: fc.oneof(wildString(20), fc.uuid()).map((t) => b64(`GPC:S:${t}`)) },
  { weight: 2, arbitrary: fc.constantFrom("GPC:N:1", "GPC:N:NaN", "GPC:O:{}", "GPC:O:[", "GPC:X:1", "GPC:", "GPC:T:[]", "GPC:T:x", "GPC:J:[1]", "GPC:I:1", "GPC:I:x", "GPC:D:1", "GPC:B:$$", "GPC:Z:", "GPC:M:x", "GPC:S:").map(b64) },
  { weight: 1, arbitrary: fc.constantFrom("", "0", "-1", "9".repeat(25), "9223372036854775807", "9223372036854775808", "1e3", " 1", "0x10", "null") },
);

type Tok = "user" | "admin" | "none" | "garbage";
const tokenArb = (weights: [number, number, number, number]) =>
  fc.oneof(
    { weight: weights[0], arbitrary: fc.constant<Tok>("user") },
    { weight: weights[1], arbitrary: fc.constant<Tok>("admin") },
    { weight: weights[2], arbitrary: fc.constant<Tok>("none") },
    { weight: weights[3], arbitrary: fc.constant<Tok>("garbage") },
  );
function tokenOf(t: Tok): string | null {
  return t === "user" ? s.userToken : t === "admin" ? s.adminToken : t === "none" ? null : `haul_${"A".repeat(43)}`;
}

/** A GraphQL literal for a JSON-ish value (enum-looking strings in enum positions become bare names). */
function literal(v: unknown, enumKeys: ReadonlySet<string> = new Set(), key = ""): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "string") return enumKeys.has(key) && /^[_A-Za-z][_0-9A-Za-z]*$/.test(v) ? v : JSON.stringify(v);
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : "null";
  if (typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `[${v.map((x) => literal(x, enumKeys, key)).join(", ")}]`;
  return `{ ${Object.entries(v as Record<string, unknown>)
    .filter(([, x]) => x !== undefined)
    .map(([k, x]) => `${k}: ${literal(x, enumKeys, k)}`)
    .join(", ")} }`;
}
const ENUM_KEYS = new Set(["priority", "type", "role"]);

const opts = (numRuns: number) => ({ numRuns: runs(numRuns), seed: SEED, verbose: fc.VerbosityLevel.Verbose });

// ---- the properties -----------------------------------------------------------------------------------

const JOB_OUT = `job { id owner displayName description files(first: 5) { edges { node { localPath remoteUrl } } } }`;

test("fuzz createJob: documented codes only, nothing changed on refusal, nothing written outside <storage>/<user>/", async () => {
  const validFiles = fc.array(fc.record({ remoteUrl: goodUrl, localPath: goodPath }), { minLength: 1, maxLength: 2 }).map((files) => ({ files, huge: null }));
  const input = focused(
    { ...VALID_JOB, files: validFiles, extra: fc.constant({}) },
    {
      displayName,
      description,
      type: jobType,
      priority,
      minimumRetryDelay: intish,
      noProgressTimeout: intish,
      maximumDownloadTime: intish,
      maxBytesPerSecond: bigintish,
      httpHeaders: headers,
      credentials,
      files: filesArb,
      extra: fc.constantFrom<Record<string, unknown>>({ owner: "admin" }, { id: UUIDS[0] }, { state: "TRANSFERRED" }, { __typename: "Job" }),
    },
    ["displayName"],
  );
  await fc.assert(
    fc.asyncProperty(input, tokenArb([12, 1, 1, 1]), fc.boolean(), async (shown, tok, inline) => {
      count("createJob");
      const { files: fspecRaw, extra, ...rest } = shown;
      const fspec = fspecRaw as { files: unknown[] | null; huge: { n: number; urlLength: number } | null } | undefined;
      const files = fspec === undefined ? undefined : fspec.huge ? hugeList(fspec.huge, randomUUID().slice(0, 8)) : fspec.files;
      const token = tok === "admin" && fspec?.huge && fspec.huge.n > 300 ? "user" : tok; // admins have no file limit: keep their lists small
      const value: Record<string, unknown> = { ...rest, ...(extra as object | undefined), ...(files === undefined ? {} : { files }) };
      const inlineOk = inline && (!fspec?.huge || fspec.huge.n <= 200);
      const query = inlineOk
        ? `mutation { createJob(input: ${literal(value, ENUM_KEYS)}) { ${JOB_OUT} } }`
        : `mutation($input: CreateJobInput!) { createJob(input: $input) { ${JOB_OUT} } }`;
      const { code, r, what } = await probe("createJob", "createJob", query, inlineOk ? undefined : { input: value }, tokenOf(token), { token, inline: inlineOk, ...shown });
      if (token === "none" || token === "garbage") assert.ok(unauthenticated(r.body), `${code}: ${what}`);
      const mustFail = filesMustFail(files);
      if (code === "ok") {
        const job = r.body.data.createJob.job;
        await cleanup(job.id);
        assert.equal(mustFail, null, `accepted a file the rules refuse (${mustFail}): ${what}`);
        assert.equal(job.owner, token === "admin" ? "admin" : "local", what);
        assert.equal(job.displayName, value.displayName, `the displayName was stored altered: ${what}`);
        const sent = ((files ?? []) as { localPath: string }[]).slice(0, 5).map((f) => f.localPath);
        const stored = job.files.edges.map((e: any) => e.node.localPath as string);
        for (const p of stored) assert.equal(pathMustFail(p), null, `stored an unsafe localPath ${JSON.stringify(p)}: ${what}`);
        assert.deepEqual(stored, sent, `the localPaths were stored altered: ${what}`);
      }
    }),
    opts(250),
  );
});

test("fuzz createJob: a literal private, link-local or mapped address (or a non-http scheme) is BAD_USER_INPUT", async () => {
  await fc.assert(
    fc.asyncProperty(
      refusedHost,
      fc.constantFrom("http://", "https://", "HTTP://", "http://u@", "file://", "ftp://", "gopher://"),
      fc.constantFrom("/", "/x.bin", ":8080/x", ":443/"),
      async (h, scheme, tail) => {
        count("createJob-ssrf");
        const remote = `${scheme}${h}${tail}`;
        const input = { displayName: "ssrf", files: [{ remoteUrl: remote, localPath: `${MARK}/ssrf/${randomUUID()}` }] };
        const { code, r, what } = await probe("createJob-ssrf", "createJob", `mutation($input: CreateJobInput!) { createJob(input: $input) { ${JOB_OUT} } }`, { input }, s.userToken, remote);
        if (code === "ok") await cleanup(r.body.data.createJob.job.id);
        assert.equal(code, "BAD_USER_INPUT", what);
      },
    ),
    opts(120),
  );
});

test("fuzz addFiles: hostile files, huge lists and malformed job ids", async () => {
  const target = fc.oneof(
    { weight: 8, arbitrary: fc.constant({ kind: "fresh" as const, id: "" }) },
    { weight: 2, arbitrary: hostileId.map((id) => ({ kind: "hostile" as const, id })) },
    { weight: 1, arbitrary: fc.constantFrom("other" as const, "cancelled" as const).map((kind) => ({ kind, id: "" })) },
  );
  await fc.assert(
    fc.asyncProperty(filesArb, target, tokenArb([12, 1, 1, 0]), fc.boolean(), async (fspec, tgt, tok, inline) => {
      count("addFiles");
      const fresh = tgt.kind === "fresh" ? await createFresh(fspec.huge ? 0 : 1) : null;
      const id = fresh ?? (tgt.kind === "other" ? fixtures.otherJob : tgt.kind === "cancelled" ? fixtures.cancelledJob : tgt.id);
      const files = fspec.huge ? hugeList(fspec.huge, randomUUID().slice(0, 8)) : fspec.files!;
      const token = tok === "admin" && fspec.huge && fspec.huge.n > 300 ? "user" : tok;
      const inlineOk = inline && (!fspec.huge || fspec.huge.n <= 200);
      const query = inlineOk
        ? `mutation { addFiles(jobId: ${literal(id)}, files: ${literal(files)}) { ${JOB_OUT} } }`
        : `mutation($id: ID!, $files: [FileInput!]!) { addFiles(jobId: $id, files: $files) { ${JOB_OUT} } }`;
      try {
        const { code, r, what } = await probe("addFiles", "addFiles", query, inlineOk ? undefined : { id, files }, tokenOf(token), { token, tgt, inline: inlineOk, fspec });
        if (token === "none") assert.ok(unauthenticated(r.body), `${code}: ${what}`);
        const mustFail = filesMustFail(files) ?? (files.length === 0 ? "empty list" : null);
        if (code === "ok") {
          assert.equal(mustFail, null, `accepted files the rules refuse (${mustFail}): ${what}`);
          assert.ok(tgt.kind === "fresh" || (tgt.kind === "other" && token === "admin"), `addFiles succeeded on a ${tgt.kind} job: ${what}`);
        }
        if (tgt.kind === "other" && token === "user") assert.ok(missing(r.body, ["TOO_MANY_FILES"]), `another user's job must look missing: ${code}: ${what}`);
        if (tgt.kind === "hostile" && token === "user") assert.ok(code !== "ok", what);
      } finally {
        if (fresh) await cleanup(fresh);
      }
    }),
    opts(200),
  );
});

test("fuzz updateJob: names, descriptions, numbers, BigInt rates, headers and credentials", async () => {
  const input = focused(
    { ...VALID_UPDATE, clearCredentials: fc.boolean() },
    {
      displayName,
      description,
      priority,
      minimumRetryDelay: intish,
      noProgressTimeout: intish,
      maximumDownloadTime: intish,
      maxBytesPerSecond: bigintish,
      httpHeaders: headers,
      credentials,
      clearCredentials: fc.constantFrom<unknown>(true, false, null, "yes", 1),
    },
  );
  const target = fc.oneof(
    { weight: 8, arbitrary: fc.constant({ kind: "fresh" as const, id: "" }) },
    { weight: 2, arbitrary: hostileId.map((id) => ({ kind: "hostile" as const, id })) },
    { weight: 1, arbitrary: fc.constantFrom("other" as const, "cancelled" as const).map((kind) => ({ kind, id: "" })) },
  );
  await fc.assert(
    fc.asyncProperty(input, target, tokenArb([12, 1, 1, 0]), fc.boolean(), async (value, tgt, tok, inline) => {
      count("updateJob");
      const fresh = tgt.kind === "fresh" ? await createFresh(1) : null;
      const id = fresh ?? (tgt.kind === "other" ? fixtures.otherJob : tgt.kind === "cancelled" ? fixtures.cancelledJob : tgt.id);
      const query = inline
        ? `mutation { updateJob(id: ${literal(id)}, input: ${literal(value, ENUM_KEYS)}) { job { id maxBytesPerSecond minimumRetryDelay noProgressTimeout maximumDownloadTime displayName httpHeaderNames hasCredentials } } }`
        : `mutation($id: ID!, $input: UpdateJobInput!) { updateJob(id: $id, input: $input) { job { id maxBytesPerSecond minimumRetryDelay noProgressTimeout maximumDownloadTime displayName httpHeaderNames hasCredentials } } }`;
      try {
        const { code, r, what } = await probe("updateJob", "updateJob", query, inline ? undefined : { id, input: value }, tokenOf(tok), { tok, tgt, inline, value });
        if (tok === "none") assert.ok(unauthenticated(r.body), `${code}: ${what}`);
        if (code === "ok") {
          assert.ok(tgt.kind === "fresh" || (tgt.kind === "other" && tok === "admin"), `updateJob succeeded on a ${tgt.kind} job: ${what}`);
          const job = r.body.data.updateJob.job;
          for (const k of ["minimumRetryDelay", "noProgressTimeout", "maximumDownloadTime"]) assert.ok(Number.isInteger(job[k]) && job[k] >= 0, `${k} = ${job[k]}: ${what}`);
          assert.ok(job.maxBytesPerSecond === null || (BigInt(job.maxBytesPerSecond) >= 1024n && BigInt(job.maxBytesPerSecond) <= 1n << 50n), `maxBytesPerSecond = ${job.maxBytesPerSecond}: ${what}`);
          assert.ok([...job.displayName].length <= 256 && !job.displayName.includes("\0"), what);
          if (typeof value.displayName === "string") assert.equal(job.displayName, value.displayName, `the displayName was stored altered: ${what}`);
          for (const n of job.httpHeaderNames) assert.match(n, /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/, what);
        }
        if (tgt.kind === "other" && tok === "user") assert.ok(missing(r.body), `another user's job must look missing: ${code}: ${what}`);
        if (tgt.kind === "hostile" && tok === "user") assert.ok(code !== "ok", what);
      } finally {
        if (fresh) await cleanup(fresh);
      }
    }),
    opts(200),
  );
});

test("fuzz suspendJob/resumeJob/completeJob/cancelJob/takeOwnership and job/node with hostile ids", async () => {
  const target = fc.oneof(
    { weight: 6, arbitrary: hostileId.map((id) => ({ kind: "hostile" as const, id })) },
    { weight: 2, arbitrary: fc.constantFrom("fresh" as const, "freshEmpty" as const).map((kind) => ({ kind, id: "" })) },
    { weight: 1, arbitrary: fc.constantFrom("other" as const, "cancelled" as const, "ownWithFile" as const).map((kind) => ({ kind, id: "" })) },
  );
  const op = fc.constantFrom("suspendJob", "resumeJob", "completeJob", "cancelJob", "takeOwnership");
  await fc.assert(
    fc.asyncProperty(op, target, tokenArb([10, 2, 1, 1]), fc.boolean(), async (name, tgt, tok, inline) => {
      count("state calls");
      const fresh = tgt.kind === "fresh" ? await createFresh(1) : tgt.kind === "freshEmpty" ? await createFresh(0) : null;
      const id =
        fresh ??
        (tgt.kind === "other" ? fixtures.otherJob : tgt.kind === "cancelled" ? fixtures.cancelledJob : tgt.kind === "ownWithFile" ? fixtures.ownJobWithFile : tgt.id);
      const arg = name === "takeOwnership" ? "jobId" : "id";
      // Mutations on the fixtures would change them for later runs: only read-only refusals are sent there.
      const mutates = tgt.kind === "ownWithFile" ? tok === "none" || tok === "garbage" : tgt.kind === "other" ? tok !== "admin" : true;
      try {
        if (mutates) {
          const query = inline
            ? `mutation { ${name}(${arg}: ${literal(id)}) { job { id owner state } warnings } }`
            : `mutation($id: ID!) { ${name}(${arg}: $id) { job { id owner state } warnings } }`;
          const { code, r, what } = await probe(name, name, query, inline ? undefined : { id }, tokenOf(tok), { name, tok, tgt, inline });
          if (tok === "none" || tok === "garbage") assert.ok(unauthenticated(r.body), `${code}: ${what}`);
          if (tgt.kind === "other" && tok === "user") assert.ok(missing(r.body), `another user's job must look missing: ${code}: ${what}`);
          if (tgt.kind === "hostile" && (tok === "user" || tok === "admin")) assert.ok(missing(r.body), `hostile id: ${code}: ${what}`);
          if (tgt.kind === "cancelled" && code === "ok") assert.equal(name, "cancelJob", `${name} succeeded on a cancelled job: ${what}`);
        }
        // The read side with the same id: job(id:) and node(id:) are null or BAD_USER_INPUT.
        for (const q of [`query($id: ID!) { job(id: $id) { id owner } }`, `query($id: ID!) { node(id: $id) { id ... on Job { owner } } }`]) {
          const r = await send(q, { id }, tokenOf(tok));
          const field = q.includes("node(") ? "node" : "job";
          const what = `${field}(${short(id)}) as ${tok}`;
          assert.ok(r.status < 500 && r.body, what);
          if (r.body.errors) verdict(r, field, what);
          else if (r.body.data[field] && tok === "user") assert.equal(r.body.data[field].owner, "local", `another user's job is visible: ${what}`);
        }
      } finally {
        if (fresh) await cleanup(fresh);
      }
    }),
    opts(250),
  );
});

test("fuzz createApiToken: hostile user names, roles and descriptions", async () => {
  const input = focused(
    { user: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/), role: fc.constantFrom("USER", "ADMIN"), description: validText(40) },
    { user: userName, role: roleArb, description: fc.oneof(description, around([256])) },
    ["user", "role"],
  );
  await fc.assert(
    fc.asyncProperty(input, tokenArb([1, 10, 1, 1]), fc.boolean(), async (value, token, inline) => {
      count("createApiToken");
      const query = inline
        ? `mutation { createApiToken(input: ${literal(value, ENUM_KEYS)}) { token apiToken { id user role description } } }`
        : `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token apiToken { id user role description } } }`;
      const { code, r, what } = await probe("createApiToken", "createApiToken", query, inline ? undefined : { input: value }, tokenOf(token), { token, inline, value });
      if (token === "none" || token === "garbage") assert.ok(unauthenticated(r.body), `${code}: ${what}`);
      if (token === "user") assert.ok(code !== "ok", what);
      if (code === "ok") {
        const created = r.body.data.createApiToken;
        assert.match(created.apiToken.user, /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, `a token for an unsafe user name: ${what}`);
        assert.equal(created.apiToken.user, value.user, what);
        assert.equal(created.apiToken.description, value.description ?? "", `the description was stored altered: ${what}`);
        assert.ok(created.apiToken.description.length <= 256, what);
      }
    }),
    opts(200),
  );
});

test("fuzz jobs(after/before/first/last/filter): malformed cursors and filters", async () => {
  const filter = focused(
    { states: fc.subarray(["QUEUED", "SUSPENDED", "CANCELLED"]), owner: fc.constantFrom("local", "admin"), allUsers: fc.boolean() },
    { states: fc.array(fc.constantFrom<unknown>("QUEUED", "SUSPENDED", "CANCELLED", "BOGUS", "", null), { maxLength: 3 }), owner: userName, allUsers: fc.constantFrom<unknown>(true, false, null, "yes") },
  );
  const args = focused(
    { after: fc.constantFrom("REAL", undefined), before: fc.constant(undefined), first: fc.integer({ min: 0, max: 200 }), last: fc.constant(undefined), filter: fc.constant({}) },
    { after: cursor, before: cursor, first: intish, last: intish, filter },
  );
  await fc.assert(
    fc.asyncProperty(args, tokenArb([6, 3, 1, 0]), async (a, tok) => {
      const vars = { ...a, ...(a.after === "REAL" ? { after: fixtures.realCursor } : {}) };
      count("jobs");
      const before = await fingerprint();
      const r = await send(
        `query($after: String, $before: String, $first: Int, $last: Int, $filter: JobFilter) { jobs(after: $after, before: $before, first: $first, last: $last, filter: $filter) { totalCount edges { cursor node { id owner } } } }`,
        vars,
        tokenOf(tok),
      );
      const what = `jobs as ${tok}: ${short(vars)}`;
      const code = verdict(r, "jobs", what);
      if (code === "ok" && tok === "user") for (const e of r.body.data.jobs.edges) assert.equal(e.node.owner, "local", `another user's job listed: ${what}`);
      assert.equal(await fingerprint(), before, `a query changed the database: ${what}`);
    }),
    opts(150),
  );
});

/**
 * One short read of an SSE subscription: the first frames within `ms` of the response headers,
 * then the stream is dropped. The headers themselves get 15 s (a loaded machine is slow, not wrong).
 */
async function sseProbe(query: string, variables: unknown, token: string | null, ms = 250): Promise<{ status: number; payloads: any[]; text: string }> {
  const abort = new AbortController();
  let timer = setTimeout(() => abort.abort(), 15_000);
  let text = "";
  let status = 0;
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
      signal: abort.signal,
    });
    status = res.status;
    if (!(res.headers.get("content-type") ?? "").includes("text/event-stream")) {
      text = await res.text();
      return { status, payloads: [JSON.parse(text)], text };
    }
    clearTimeout(timer);
    timer = setTimeout(() => abort.abort(), ms);
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += dec.decode(value, { stream: true });
        if (text.includes("event: complete")) break;
      }
    } catch {
      /* aborted: a live stream */
    } finally {
      await reader.cancel().catch(() => {});
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
  }
  const payloads = text
    .replace(/\r\n?/g, "\n")
    .split("\n\n")
    .map((frame) => frame.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n"))
    .filter((d) => d !== "")
    .map((d) => JSON.parse(d));
  return { status, payloads, text };
}

test("fuzz jobStateChanged(after:, jobId:) over SSE: malformed cursors and ids", async () => {
  const args = fc.record({ after: fc.oneof(cursor, fc.constantFrom("0", "1", "REAL")), jobId: fc.oneof(hostileId, fc.constant("OTHER"), fc.constant("OWN")) }, { requiredKeys: [] });
  await fc.assert(
    fc.asyncProperty(args, tokenArb([6, 1, 1, 0]), async (a, tok) => {
      count("jobStateChanged");
      const vars = {
        ...a,
        ...(a.after === "REAL" ? { after: "1" } : {}),
        ...(a.jobId === "OTHER" ? { jobId: fixtures.otherJob } : a.jobId === "OWN" ? { jobId: fixtures.ownJobWithFile } : {}),
      };
      const { status, payloads, text } = await sseProbe(
        `subscription($after: String, $jobId: ID) { jobStateChanged(after: $after, jobId: $jobId) { cursor actor job { id owner } } }`,
        vars,
        tokenOf(tok),
      );
      const what = `jobStateChanged as ${tok}: ${short(vars)} -> HTTP ${status} ${text.slice(0, 500)}`;
      assert.ok(status > 0 && status < 500, what);
      for (const p of payloads) {
        if (p.errors) verdict({ status, body: p, text }, "jobStateChanged", what);
        else if (tok === "user") assert.equal(p.data.jobStateChanged.job.owner, "local", `another user's event: ${what}`);
      }
      if (a.jobId === "OTHER" && tok === "user") assert.ok(missing(payloads[0]), `another user's job must look missing: ${what}`);
      if (tok === "none") assert.ok(unauthenticated(payloads[0]), what);
    }),
    opts(40),
  );
});

test("fuzz the request envelope: raw bodies, operationName, variables and extensions around a mutation", async () => {
  const DOCS = [
    `mutation($id: ID!) { cancelJob(id: $id) { warnings } }`,
    `mutation a($id: ID!) { cancelJob(id: $id) { warnings } } mutation b($id: ID!) { suspendJob(id: $id) { warnings } }`,
    `mutation($id: ID!) { cancelJob(id: $id) { warnings } } mutation($id: ID!) { suspendJob(id: $id) { warnings } }`,
    `mutation { a: cancelJob(id: "x") { warnings } b: createJob(input: { displayName: "x" }) { job { id } } }`,
    `subscription { jobStateChanged { cursor } }`,
    `{ viewer { user } }`,
  ];
  const body = fc.oneof(
    { weight: 1, arbitrary: wildString(60) },
    { weight: 1, arbitrary: fc.constantFrom("{", "[]", "[{}]", "null", "1", '"x"', "{}", '{"query":null}', "\u0000", '{"query":"{ viewer { user } }"}'.repeat(2)) },
    {
      weight: 4,
      arbitrary: fc
        .record(
          {
            query: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...DOCS) }, { weight: 1, arbitrary: wildString(30) }, { weight: 1, arbitrary: fc.constantFrom<unknown>(1, null, [], {}) }),
            variables: fc.oneof(hostileId.map((id) => ({ id })), fc.constantFrom<unknown>("x", 1, [], null, { id: null })),
            operationName: fc.oneof(fc.constantFrom<unknown>("a", "b", "c", "", null, 1, []), wildString(10)),
            extensions: fc.constantFrom<unknown>({ persistedQuery: { version: 1, sha256Hash: "x" } }, "x", [], null, { http: { status: 500 } }),
          },
          { requiredKeys: ["query"] },
        )
        .map((o) => JSON.stringify(o)),
    },
  );
  const how = fc.record({
    method: fc.constantFrom("POST", "POST", "POST", "GET", "PUT"),
    contentType: fc.constantFrom("application/json", "application/json", "application/graphql", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"),
  });
  await fc.assert(
    fc.asyncProperty(body, how, tokenArb([6, 1, 1, 1]), async (b, h, tok) => {
      count("envelope");
      const before = await fingerprint();
      const token = tokenOf(tok);
      const qs = h.method === "GET" ? `?${new URLSearchParams(Object.entries((() => { try { return JSON.parse(b) ?? {}; } catch { return { query: b }; } })()).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]))}` : "";
      const res = await fetch(url + qs, {
        method: h.method,
        headers: { "content-type": h.contentType, accept: "application/graphql-response+json, application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: h.method === "GET" ? undefined : b,
      });
      const text = await res.text();
      const what = `${h.method} ${h.contentType} as ${tok}: ${short(b, 300)} -> HTTP ${res.status} ${text.slice(0, 400)}`;
      assert.ok(res.status < 500, what);
      let json: any = null;
      try {
        json = JSON.parse(text);
      } catch {
        assert.ok([405, 406, 415].includes(res.status), `not JSON: ${what}`);
      }
      if (json?.errors) for (const e of json.errors) {
        const code = e?.extensions?.code;
        assert.ok(typeof code === "string" && DOCUMENTED.has(code), `undocumented code ${code}: ${what}`);
        for (const [re, name] of LEAKS) assert.ok(!re.test(String(e.message)), `the message leaks ${name}: ${what}`);
        assert.ok(!/"(stack|stacktrace|exception)"/.test(JSON.stringify(e.extensions ?? {})), `extensions leak a stack: ${what}`);
      }
      const created = Object.values((json?.data ?? {}) as Record<string, any>).map((v) => v?.job?.id).filter(Boolean);
      for (const id of created) await cleanup(id);
      if (created.length === 0 && (!json?.data || Object.values(json.data).every((v) => v == null))) assert.equal(await fingerprint(), before, `a refused request changed the database: ${what}`);
      checkFilesystem(what);
    }),
    opts(100),
  );
});

// ---- minimal examples the fuzzer found: regular cases, they fail until src/ is fixed --------------------

/** Sends one request and checks it is refused with `code` (never INTERNAL) and changed nothing. */
async function expectRefused(name: string, query: string, variables: Record<string, unknown>, token: string, codes: string[] = ["BAD_USER_INPUT"]): Promise<void> {
  const before = await fingerprint();
  const r = await send(query, variables, token);
  const code = verdict(r, query.match(/\{\s*(\w+)/)![1]!, `${name}: ${short(variables)}`);
  if (code === "ok") {
    const created = r.body.data.createJob?.job?.id;
    if (created) await cleanup(created);
  }
  assert.ok(codes.includes(code), `${name}: expected ${codes.join(" or ")}, got ${code}: ${r.text.slice(0, 400)}`);
  assert.equal(await fingerprint(), before, `${name}: the refusal changed the database`);
  checkFilesystem(name);
}
const CREATE = `mutation($input: CreateJobInput!) { createJob(input: $input) { ${JOB_OUT} } }`;
const UPDATE = `mutation($id: ID!, $input: UpdateJobInput!) { updateJob(id: $id, input: $input) { job { id displayName } } }`;

test("found by fuzzing: node(id:) of another user's job is null for a user, as job(id:) is", async () => {
  assert.equal((await send(`query($id: ID!) { job(id: $id) { id } }`, { id: fixtures.otherJob }, s.userToken)).body.data.job, null);
  const r = await send(`query($id: ID!) { node(id: $id) { id ... on Job { owner displayName } } }`, { id: fixtures.otherJob }, s.userToken);
  if (r.body?.errors) verdict(r, "node", "node(<admin's job>) as user local");
  assert.equal(r.body.data?.node ?? null, null, `node(<admin's job>) as user "local" shows it: ${r.text}`);
});

test("found by fuzzing: node(id:) of another user's file is null for a user", async () => {
  const file = (await send(`query($id: ID!) { job(id: $id) { files { edges { node { id } } } } }`, { id: fixtures.otherJob }, s.adminToken)).body.data.job.files.edges[0].node.id;
  const r = await send(`query($id: ID!) { node(id: $id) { id ... on File { localPath job { owner displayName } } } }`, { id: file }, s.userToken);
  if (r.body?.errors) verdict(r, "node", "node(<admin's file>) as user local");
  assert.equal(r.body.data?.node ?? null, null, `node(<admin's file>) as user "local" shows it: ${r.text}`);
});

test("found by fuzzing: a remote URL longer than 2,200 characters once normalised is BAD_USER_INPUT, not INTERNAL", async () => {
  // 383 characters as sent; the URL parser percent-encodes each "ä" to "%C3%A4": 2,203 characters to
  // store in a VARCHAR(2200) column (363 "ä" = 2,197 characters passes).
  const remoteUrl = "http://example.com/" + "ä".repeat(364);
  await expectRefused("long normalised URL (createJob)", CREATE, { input: { displayName: "u", files: [{ remoteUrl, localPath: `${MARK}/fixed/u.bin` }] } }, s.userToken);
  const id = await createFresh(0);
  try {
    await expectRefused(
      "long normalised URL (addFiles)",
      `mutation($id: ID!, $files: [FileInput!]!) { addFiles(jobId: $id, files: $files) { job { id } } }`,
      { id, files: [{ remoteUrl, localPath: `${MARK}/fixed/v.bin` }] },
      s.userToken,
    );
  } finally {
    await cleanup(id);
  }
});

test("found by fuzzing: a lone UTF-16 surrogate in a header value or in credentials is BAD_USER_INPUT, not INTERNAL", async () => {
  await expectRefused("header value \\ud800 (createJob)", CREATE, { input: { displayName: "h", httpHeaders: [{ name: "X-A", value: "\ud800" }] } }, s.userToken);
  await expectRefused("credentials username \\ud800 (createJob)", CREATE, { input: { displayName: "c", credentials: { username: "\ud800", password: "p" } } }, s.userToken);
  await expectRefused("credentials password \\udc00 (createJob)", CREATE, { input: { displayName: "c", credentials: { username: "u", password: "\udc00" } } }, s.userToken);
  const id = await createFresh(0);
  try {
    await expectRefused("header value \\udc00 (updateJob)", UPDATE, { id, input: { httpHeaders: [{ name: "X-A", value: "\udc00" }] } }, s.userToken);
    await expectRefused("credentials \\ud800 (updateJob)", UPDATE, { id, input: { credentials: { username: "\ud800", password: "p" } } }, s.userToken);
  } finally {
    await cleanup(id);
  }
});

test("found by fuzzing: a lone UTF-16 surrogate in a localPath is BAD_USER_INPUT (not INTERNAL, not silently replaced by U+FFFD)", async () => {
  // The same-destination check sends the paths to Postgres as JSON ("\\udc00" escapes), which refuses
  // a lone surrogate: INTERNAL. When that check has no rows to compare against, "a\ud800" is instead
  // stored as "a\ufffd", so two different requested destinations become one final path.
  await expectRefused("localPath a\\udc00", CREATE, { input: { displayName: "p", files: [{ remoteUrl: "http://127.0.0.1:9/p", localPath: `${MARK}/fixed/a\udc00` }] } }, s.userToken);
  await expectRefused("localPath a\\ud800", CREATE, { input: { displayName: "p", files: [{ remoteUrl: "http://127.0.0.1:9/p", localPath: `${MARK}/fixed/a\ud800` }] } }, s.userToken);
});

test("found by fuzzing: a lone UTF-16 surrogate in a displayName, description or token description is refused, not stored altered", async () => {
  await expectRefused("displayName \\ud800", CREATE, { input: { displayName: "\ud800" } }, s.userToken);
  await expectRefused("description \\udc00", CREATE, { input: { displayName: "d", description: "x\udc00" } }, s.userToken);
  await expectRefused(
    "token description \\ud800",
    `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token apiToken { id description } } }`,
    { input: { user: "fuzzfixed", role: "USER", description: "\ud800" } },
    s.adminToken,
  );
});

test("found by fuzzing: createApiToken with a NUL in the description is BAD_USER_INPUT, not INTERNAL", async () => {
  await expectRefused(
    "token description NUL",
    `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token apiToken { id } } }`,
    { input: { user: "fuzzfixed", role: "USER", description: "\0" } },
    s.adminToken,
  );
});

test("found by fuzzing: jobs(filter: { owner }) with a NUL is answered (BAD_USER_INPUT or no jobs), not INTERNAL", async () => {
  for (const filter of [{ owner: "\0" }, { owner: "a\0", allUsers: true }]) {
    const r = await send(`query($f: JobFilter) { jobs(filter: $f) { totalCount edges { node { id } } } }`, { f: filter }, s.adminToken);
    const code = verdict(r, "jobs", `jobs(filter: ${short(filter)}) as admin`);
    if (code === "ok") assert.equal(r.body.data.jobs.totalCount, 0);
    else assert.equal(code, "BAD_USER_INPUT");
  }
});

test("found by fuzzing: a decodable but wrong connection cursor (jobs and Job.files, after and before) is BAD_USER_INPUT, not INTERNAL", async () => {
  const cases: [string, Record<string, unknown>][] = [
    [`query($c: String) { jobs(after: $c) { edges { cursor } } }`, { c: b64("GPC:S:") }],
    [`query($c: String) { jobs(after: $c) { edges { cursor } } }`, { c: b64("GPC:S:not-a-uuid") }],
    [`query($c: String) { jobs(after: $c) { edges { cursor } } }`, { c: b64("GPC:N:1") }],
    [`query($c: String) { jobs(before: $c, last: 1) { edges { cursor } } }`, { c: b64("GPC:O:{}") }],
    [`query($id: ID!, $c: String) { job(id: $id) { files(after: $c) { edges { cursor } } } }`, { id: fixtures.ownJobWithFile, c: b64("GPC:S:x") }],
  ];
  for (const [q, v] of cases) {
    const r = await send(q, v, s.userToken);
    const field = q.includes("job(id") ? "job" : "jobs";
    const code = verdict(r, field, `${q} ${short(v)}`);
    assert.equal(code, "BAD_USER_INPUT", `${short(v)}: ${r.text.slice(0, 300)}`);
  }
});

test("found by fuzzing: an operationName that names no operation, or none for two named operations (or an empty one) gets a documented code", async () => {
  for (const body of [
    { query: `mutation a { cancelJob(id: "x") { warnings } }`, operationName: "b" },
    { query: `mutation a { cancelJob(id: "x") { warnings } } mutation b { suspendJob(id: "x") { warnings } }` },
  ]) {
    const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${s.userToken}` }, body: JSON.stringify(body) });
    const text = await res.text();
    const code = JSON.parse(text).errors?.[0]?.extensions?.code;
    assert.ok(DOCUMENTED.has(code), `${short(body)}: undocumented code ${code}: ${text}`);
  }
});

test("found by fuzzing: GET /graphql with variables or extensions that are not JSON is BAD_REQUEST, not INTERNAL", async () => {
  const query = encodeURIComponent("{ viewer { user } }");
  for (const [qs, token] of [
    [`query=${query}&variables=x`, s.userToken],
    [`query=${query}&variables=%7B`, s.userToken],
    [`query=${query}&extensions=x`, null],
  ] as const) {
    const res = await fetch(`${url}?${qs}`, { headers: { accept: "application/graphql-response+json", ...(token ? { authorization: `Bearer ${token}` } : {}) } });
    const text = await res.text();
    const code = JSON.parse(text).errors?.[0]?.extensions?.code;
    assert.equal(code, "BAD_REQUEST", `GET ?${qs} (${token ? "user" : "no token"}): HTTP ${res.status} ${text}`);
  }
});

test("after the fuzzing: nothing outside the storage root, the canary intact", () => {
  checkFilesystem("the whole run");
  assert.deepEqual(tree(CANARY), canaryBefore);
  assert.equal(fs.readFileSync(path.join(CANARY, "secret.txt"), "utf8"), "canary\n");
  assert.deepEqual(names(os.tmpdir()), outsideBefore.tmp, `a ${MARK} entry appeared in ${os.tmpdir()}`);
  assert.deepEqual(names(process.cwd()), outsideBefore.cwd, `a ${MARK} entry appeared in ${process.cwd()}`);
  assert.deepEqual(names("/"), outsideBefore.root, `a ${MARK} entry appeared in /`);
  for (const entry of tree(STORAGE)) assert.ok(USERS.has(entry.split("/")[0]!.split(" ")[0]!), entry);
});
