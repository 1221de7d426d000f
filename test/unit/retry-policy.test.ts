/**
 * Failure classification (src/domain/retry-policy.ts).
 *
 * The expected {transient, context, code, httpStatus} below are written out
 * by hand from the rules (bits-model.md §4 plus the issue text), never derived
 * from the implementation or from ERROR_CODE_TABLE. The table is then checked
 * against what classify returns, both ways: every returned code is in the
 * table with the same transient flag and context, and every table entry is
 * returned by some case.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import net from "node:net";
import {
  ERROR_CODE_TABLE,
  MAX_RETRY_AFTER_SECONDS,
  classify,
  errorCodeInfo,
  failureFromError,
  parseRetryAfter,
  sanitizeUrl,
  toErrorInfo,
  type Classification,
  type Failure,
} from "../../src/domain/retry-policy.js";
import { decide, type ErrorContext, type JobSnapshot } from "../../src/domain/job-state.js";

const NOW = new Date("2025-06-01T00:00:00.000Z");

type Expected = [transient: boolean, context: ErrorContext, code: string, httpStatus: number | null];
const T = true;
const F = false;
const RF: ErrorContext = "REMOTE_FILE";
const GT: ErrorContext = "GENERAL_TRANSPORT";
const LF: ErrorContext = "LOCAL_FILE";
const QM: ErrorContext = "GENERAL_QUEUE_MANAGER";
const UN: ErrorContext = "UNKNOWN";

const http = (status: number, extra: { retryAfter?: string | null; url?: string } = {}): Failure => ({ kind: "http", status, ...extra });
const netw = (code: string): Failure => ({ kind: "network", code });
const local = (code: string): Failure => ({ kind: "local", code, path: "/data/out.bin" });

const CASES: Array<[name: string, failure: Failure, expected: Expected]> = [
  // HTTP 4xx: fatal except 408 and 429; 416 has its own code
  ["400", http(400), [F, RF, "HTTP_400", 400]],
  ["401", http(401), [F, RF, "HTTP_401", 401]],
  ["402", http(402), [F, RF, "HTTP_402", 402]],
  ["403", http(403), [F, RF, "HTTP_403", 403]],
  ["404", http(404), [F, RF, "HTTP_404", 404]],
  ["405", http(405), [F, RF, "HTTP_405", 405]],
  ["407", http(407), [F, RF, "HTTP_407", 407]],
  ["408", http(408), [T, RF, "HTTP_408", 408]],
  ["409", http(409), [F, RF, "HTTP_409", 409]],
  ["410", http(410), [F, RF, "HTTP_410", 410]],
  ["413", http(413), [F, RF, "HTTP_413", 413]],
  ["414", http(414), [F, RF, "HTTP_414", 414]],
  ["416", http(416), [F, RF, "RANGE_NOT_SATISFIABLE", 416]],
  ["418", http(418), [F, RF, "HTTP_418", 418]],
  ["425", http(425), [F, RF, "HTTP_425", 425]],
  ["429", http(429), [T, RF, "HTTP_429", 429]],
  ["451", http(451), [F, RF, "HTTP_451", 451]],
  ["499", http(499), [F, RF, "HTTP_499", 499]],
  // HTTP 5xx: all transient
  ["500", http(500), [T, RF, "HTTP_500", 500]],
  ["501", http(501), [T, RF, "HTTP_501", 501]],
  ["502", http(502), [T, RF, "HTTP_502", 502]],
  ["503", http(503), [T, RF, "HTTP_503", 503]],
  ["504", http(504), [T, RF, "HTTP_504", 504]],
  ["505", http(505), [T, RF, "HTTP_505", 505]],
  ["507", http(507), [T, RF, "HTTP_507", 507]],
  ["511", http(511), [T, RF, "HTTP_511", 511]],
  ["599", http(599), [T, RF, "HTTP_599", 599]],
  // unusual statuses handed in as failures
  ["100", http(100), [F, GT, "INVALID_SERVER_RESPONSE", 100]],
  ["101", http(101), [F, GT, "INVALID_SERVER_RESPONSE", 101]],
  ["103", http(103), [F, GT, "INVALID_SERVER_RESPONSE", 103]],
  ["200 (unusable)", http(200), [F, GT, "INVALID_SERVER_RESPONSE", 200]],
  ["201", http(201), [F, GT, "INVALID_SERVER_RESPONSE", 201]],
  ["204", http(204), [F, GT, "INVALID_SERVER_RESPONSE", 204]],
  ["206 (unusable)", http(206), [F, GT, "INVALID_SERVER_RESPONSE", 206]],
  ["300 without Location", http(300), [F, RF, "BAD_REDIRECT", 300]],
  ["301 without Location", http(301), [F, RF, "BAD_REDIRECT", 301]],
  ["302 without Location", http(302), [F, RF, "BAD_REDIRECT", 302]],
  ["303 without Location", http(303), [F, RF, "BAD_REDIRECT", 303]],
  ["304 is not a redirect", http(304), [F, GT, "INVALID_SERVER_RESPONSE", 304]],
  ["307 without Location", http(307), [F, RF, "BAD_REDIRECT", 307]],
  ["308 without Location", http(308), [F, RF, "BAD_REDIRECT", 308]],
  ["status 0", http(0), [F, GT, "INVALID_SERVER_RESPONSE", 0]],
  ["status 99", http(99), [F, GT, "INVALID_SERVER_RESPONSE", 99]],
  ["status 600", http(600), [F, GT, "INVALID_SERVER_RESPONSE", 600]],
  ["status 1000", http(1000), [F, GT, "INVALID_SERVER_RESPONSE", null]],
  ["status 404.5", http(404.5), [F, GT, "INVALID_SERVER_RESPONSE", null]],
  ["status NaN", http(Number.NaN), [F, GT, "INVALID_SERVER_RESPONSE", null]],
  ["status -1", http(-1), [F, GT, "INVALID_SERVER_RESPONSE", null]],
  // network
  ["ECONNREFUSED", netw("ECONNREFUSED"), [T, GT, "CONNECTION_REFUSED", null]],
  ["ECONNRESET", netw("ECONNRESET"), [T, GT, "CONNECTION_RESET", null]],
  ["EPIPE", netw("EPIPE"), [T, GT, "CONNECTION_RESET", null]],
  ["ECONNABORTED", netw("ECONNABORTED"), [T, GT, "CONNECTION_RESET", null]],
  ["UND_ERR_SOCKET", netw("UND_ERR_SOCKET"), [T, GT, "CONNECTION_RESET", null]],
  ["UND_ERR_CLOSED", netw("UND_ERR_CLOSED"), [T, GT, "CONNECTION_RESET", null]],
  ["ERR_STREAM_PREMATURE_CLOSE", netw("ERR_STREAM_PREMATURE_CLOSE"), [T, GT, "CONNECTION_RESET", null]],
  ["ETIMEDOUT", netw("ETIMEDOUT"), [T, GT, "CONNECTION_TIMEOUT", null]],
  ["ESOCKETTIMEDOUT", netw("ESOCKETTIMEDOUT"), [T, GT, "CONNECTION_TIMEOUT", null]],
  ["UND_ERR_CONNECT_TIMEOUT", netw("UND_ERR_CONNECT_TIMEOUT"), [T, GT, "CONNECTION_TIMEOUT", null]],
  ["UND_ERR_HEADERS_TIMEOUT", netw("UND_ERR_HEADERS_TIMEOUT"), [T, GT, "STALLED", null]],
  ["UND_ERR_BODY_TIMEOUT", netw("UND_ERR_BODY_TIMEOUT"), [T, GT, "STALLED", null]],
  ["EHOSTUNREACH", netw("EHOSTUNREACH"), [T, GT, "NETWORK_UNREACHABLE", null]],
  ["ENETUNREACH", netw("ENETUNREACH"), [T, GT, "NETWORK_UNREACHABLE", null]],
  ["ENETDOWN", netw("ENETDOWN"), [T, GT, "NETWORK_UNREACHABLE", null]],
  ["ENOTFOUND", netw("ENOTFOUND"), [T, GT, "DNS_FAILURE", null]],
  ["EAI_AGAIN", netw("EAI_AGAIN"), [T, GT, "DNS_FAILURE", null]],
  ["EAI_FAIL", netw("EAI_FAIL"), [T, GT, "DNS_FAILURE", null]],
  ["ESERVFAIL", netw("ESERVFAIL"), [T, GT, "DNS_FAILURE", null]],
  ["UND_ERR_RES_CONTENT_LENGTH_MISMATCH", netw("UND_ERR_RES_CONTENT_LENGTH_MISMATCH"), [T, GT, "SHORT_BODY", null]],
  ["HPE_INVALID_CONSTANT", netw("HPE_INVALID_CONSTANT"), [F, GT, "INVALID_SERVER_RESPONSE", null]],
  ["HPE_INVALID_CHUNK_SIZE", netw("HPE_INVALID_CHUNK_SIZE"), [F, GT, "INVALID_SERVER_RESPONSE", null]],
  ["CERT_HAS_EXPIRED", netw("CERT_HAS_EXPIRED"), [F, GT, "TLS_ERROR", null]],
  ["DEPTH_ZERO_SELF_SIGNED_CERT", netw("DEPTH_ZERO_SELF_SIGNED_CERT"), [F, GT, "TLS_ERROR", null]],
  ["ERR_TLS_CERT_ALTNAME_INVALID", netw("ERR_TLS_CERT_ALTNAME_INVALID"), [F, GT, "TLS_ERROR", null]],
  ["UNABLE_TO_VERIFY_LEAF_SIGNATURE", netw("UNABLE_TO_VERIFY_LEAF_SIGNATURE"), [F, GT, "TLS_ERROR", null]],
  ["unrecognised network code", netw("EWHATEVER"), [F, UN, "UNKNOWN", null]],
  ["empty network code", netw(""), [F, UN, "UNKNOWN", null]],
  // timeouts / stalls
  ["connect timeout", { kind: "timeout", phase: "connect", seconds: 30 }, [T, GT, "CONNECTION_TIMEOUT", null]],
  ["headers stall", { kind: "timeout", phase: "headers", seconds: 60 }, [T, GT, "STALLED", null]],
  ["body stall", { kind: "timeout", phase: "body", seconds: 120 }, [T, GT, "STALLED", null]],
  // body, redirects, protocol
  ["short body", { kind: "shortBody", expected: 1000, received: 400 }, [T, GT, "SHORT_BODY", null]],
  ["too many redirects", { kind: "tooManyRedirects", limit: 10 }, [F, RF, "TOO_MANY_REDIRECTS", null]],
  ["redirect without Location", { kind: "badRedirect", location: null }, [F, RF, "BAD_REDIRECT", null]],
  ["redirect to ftp", { kind: "badRedirect", location: "ftp://example.com/x" }, [F, RF, "BAD_REDIRECT", null]],
  ["protocol: merged ranges", { kind: "protocol", message: "the server merged ranges" }, [F, GT, "INVALID_SERVER_RESPONSE", null]],
  ["416 on resume", { kind: "rangeNotSatisfiable", size: 1000 }, [F, RF, "RANGE_NOT_SATISFIABLE", 416]],
  ["416 on resume, size unknown", { kind: "rangeNotSatisfiable", size: null }, [F, RF, "RANGE_NOT_SATISFIABLE", 416]],
  // local files
  ["EACCES", local("EACCES"), [F, LF, "LOCAL_PERMISSION_DENIED", null]],
  ["EPERM", local("EPERM"), [F, LF, "LOCAL_PERMISSION_DENIED", null]],
  ["EROFS", local("EROFS"), [F, LF, "LOCAL_PERMISSION_DENIED", null]],
  ["ENOSPC", local("ENOSPC"), [F, LF, "DISK_FULL", null]],
  ["EDQUOT", local("EDQUOT"), [F, LF, "DISK_FULL", null]],
  ["ENOENT", local("ENOENT"), [F, LF, "LOCAL_FILE_ERROR", null]],
  ["EISDIR", local("EISDIR"), [F, LF, "LOCAL_FILE_ERROR", null]],
  ["ENOTDIR", local("ENOTDIR"), [F, LF, "LOCAL_FILE_ERROR", null]],
  ["EEXIST", local("EEXIST"), [F, LF, "LOCAL_FILE_ERROR", null]],
  ["EMFILE", local("EMFILE"), [F, LF, "LOCAL_FILE_ERROR", null]],
  ["ENAMETOOLONG", local("ENAMETOOLONG"), [F, LF, "LOCAL_FILE_ERROR", null]],
  ["EIO", local("EIO"), [F, LF, "LOCAL_FILE_ERROR", null]],
  ["local, no path", { kind: "local", code: "EBUSY" }, [F, LF, "LOCAL_FILE_ERROR", null]],
  // policy and the rest
  ["checksum", { kind: "checksum", expected: "sha256:aa", actual: "sha256:bb" }, [F, RF, "CHECKSUM_MISMATCH", null]],
  ["destination not allowed", { kind: "destinationNotAllowed", address: "10.0.0.1" }, [F, QM, "DESTINATION_NOT_ALLOWED", null]],
  ["too large", { kind: "tooLarge", limit: 1_000_000 }, [F, QM, "TOO_LARGE", null]],
  ["unknown", { kind: "unknown", message: "something odd" }, [F, UN, "UNKNOWN", null]],
  // malformed input from plain JS callers: never throws
  ["bogus kind", { kind: "bogus" } as unknown as Failure, [F, UN, "UNKNOWN", null]],
  ["null failure", null as unknown as Failure, [F, UN, "UNKNOWN", null]],
];

function pick(c: Classification): Expected {
  return [c.transient, c.context, c.code, c.httpStatus];
}

test("classify: every failure gets the expected transient flag, context, code and HTTP status", () => {
  for (const [name, failure, expected] of CASES) {
    const c = classify(failure, NOW);
    assert.deepEqual(pick(c), expected, name);
    assert.equal(c.retryAfterSeconds, null, `${name}: no Retry-After given`);
    assert.ok(c.message.length > 10, `${name}: has a message`);
    assert.ok(!/[\r\n]/.test(c.message), `${name}: message is one line`);
    assert.ok(c.message.includes(";"), `${name}: message says what happened; then what to do`);
    assert.match(c.code, /^[A-Z][A-Z0-9_]*$/, `${name}: code is UPPER_SNAKE`);
  }
});

test("classify: results are plain data with exactly the documented keys", () => {
  const c = classify(http(404), NOW);
  assert.deepEqual(Object.keys(c).sort(), ["code", "context", "httpStatus", "message", "retryAfterSeconds", "transient"]);
});

test("ERROR_CODE_TABLE lists exactly the codes classify returns, with the same transient flag and context", () => {
  const covered = new Set<string>();
  for (const [name, failure] of CASES) {
    const c = classify(failure, NOW);
    const info = errorCodeInfo(c.code);
    assert.ok(info, `${name}: ${c.code} is documented`);
    assert.equal(info.transient, c.transient, `${name}: table transient for ${c.code}`);
    assert.equal(info.context, c.context, `${name}: table context for ${c.code}`);
    const key = Object.hasOwn(ERROR_CODE_TABLE, c.code) ? c.code : c.code.startsWith("HTTP_4") ? "HTTP_4xx" : "HTTP_5xx";
    covered.add(key);
  }
  // every HTTP status 400-599 maps to a documented code
  for (let status = 400; status <= 599; status++) {
    const c = classify(http(status), NOW);
    const info = errorCodeInfo(c.code);
    assert.ok(info, `HTTP ${status}: ${c.code} documented`);
    assert.equal(info.transient, c.transient, `HTTP ${status}`);
    assert.equal(info.context, c.context, `HTTP ${status}`);
  }
  assert.deepEqual([...covered].sort(), Object.keys(ERROR_CODE_TABLE).sort(), "every table entry is reachable and every code is in the table");
});

test("ERROR_CODE_TABLE: the specific entries and patterns", () => {
  const expected: Record<string, [boolean, ErrorContext]> = {
    HTTP_4xx: [F, RF],
    HTTP_5xx: [T, RF],
    HTTP_401: [F, RF],
    HTTP_403: [F, RF],
    HTTP_404: [F, RF],
    HTTP_407: [F, RF],
    HTTP_408: [T, RF],
    HTTP_410: [F, RF],
    HTTP_429: [T, RF],
    HTTP_500: [T, RF],
    HTTP_502: [T, RF],
    HTTP_503: [T, RF],
    HTTP_504: [T, RF],
    RANGE_NOT_SATISFIABLE: [F, RF],
    BAD_REDIRECT: [F, RF],
    TOO_MANY_REDIRECTS: [F, RF],
    INVALID_SERVER_RESPONSE: [F, GT],
    CONNECTION_REFUSED: [T, GT],
    CONNECTION_RESET: [T, GT],
    CONNECTION_TIMEOUT: [T, GT],
    NETWORK_UNREACHABLE: [T, GT],
    DNS_FAILURE: [T, GT],
    STALLED: [T, GT],
    SHORT_BODY: [T, GT],
    TLS_ERROR: [F, GT],
    LOCAL_PERMISSION_DENIED: [F, LF],
    DISK_FULL: [F, LF],
    LOCAL_FILE_ERROR: [F, LF],
    CHECKSUM_MISMATCH: [F, RF],
    TOO_LARGE: [F, QM],
    DESTINATION_NOT_ALLOWED: [F, QM],
    UNKNOWN: [F, UN],
  };
  const actual = Object.fromEntries(Object.entries(ERROR_CODE_TABLE).map(([k, v]) => [k, [v.transient, v.context]]));
  assert.deepEqual(actual, expected);
  for (const [code, info] of Object.entries(ERROR_CODE_TABLE)) assert.ok(info.meaning.length > 10, `${code} has a meaning`);
  assert.ok(Object.isFrozen(ERROR_CODE_TABLE));
  assert.ok(Object.isFrozen(ERROR_CODE_TABLE.HTTP_404));
  assert.deepEqual(errorCodeInfo("HTTP_418"), ERROR_CODE_TABLE.HTTP_4xx);
  assert.deepEqual(errorCodeInfo("HTTP_599"), ERROR_CODE_TABLE.HTTP_5xx);
  assert.deepEqual(errorCodeInfo("HTTP_404"), ERROR_CODE_TABLE.HTTP_404);
  assert.equal(errorCodeInfo("HTTP_200"), undefined);
  assert.equal(errorCodeInfo("NOPE"), undefined);
  assert.equal(errorCodeInfo("toString"), undefined);
});

// ---------------------------------------------------------------------------
// Retry-After

test("parseRetryAfter: delta-seconds", () => {
  const cases: Array<[string | null | undefined, number | null]> = [
    ["120", 120],
    [" 120 ", 120],
    ["0", 0],
    ["007", 7],
    ["12", 12], // Date.parse would call this a date in 2001
    [String(MAX_RETRY_AFTER_SECONDS), 604_800],
    [String(MAX_RETRY_AFTER_SECONDS + 1), 604_800],
    ["99999999999999999999999999", 604_800],
    ["9".repeat(400), 604_800], // Number() gives Infinity
    ["-5", null],
    ["1.5", null],
    ["+5", null],
    ["1e3", null],
    ["120 seconds", null],
    ["", null],
    ["   ", null],
    ["soon", null],
    ["soon 12", null],
    ["2025-06-01T00:01:00Z", null], // ISO 8601 is not an HTTP-date
    [null, null],
    [undefined, null],
  ];
  for (const [value, expected] of cases) assert.equal(parseRetryAfter(value, NOW), expected, JSON.stringify(value));
});

test("parseRetryAfter: HTTP-dates relative to now", () => {
  const cases: Array<[string, number | null]> = [
    ["Sun, 01 Jun 2025 00:01:30 GMT", 90], // IMF-fixdate, future
    ["Sun, 01 Jun 2025 00:00:00 GMT", 0], // now
    ["Sat, 31 May 2025 23:00:00 GMT", 0], // past -> 0
    ["Sun, 06 Nov 1994 08:49:37 GMT", 0], // long past
    ["Mon, 01 Jun 2026 00:00:00 GMT", 604_800], // a year ahead: clamped to 7 days
    ["Sun, 08 Jun 2025 00:00:00 GMT", 604_800], // exactly 7 days
    ["Sat, 07 Jun 2025 23:59:59 GMT", 604_799],
    ["sun, 01 jun 2025 00:01:00 gmt", 60], // case-insensitive
    ["Sun, 01 Jun 2025 00:01:00 UTC", 60],
    ["Mon, 01 Jun 2025 00:01:00 GMT", 60], // wrong weekday: ignored, as most clients do
    ["Sunday, 01-Jun-25 00:02:00 GMT", 120], // RFC 850, two-digit year -> 2025
    ["Monday, 01-Jun-80 00:00:00 GMT", 0], // 2080 is > 50 years ahead -> 1980 (past)
    ["Sun Jun  1 00:03:00 2025", 180], // asctime
    ["Sun Jun 01 00:03:00 2025", 180],
    ["Sun, 30 Feb 2025 00:00:00 GMT", null], // no such day
    ["Sun, 01 Jun 2025 24:00:00 GMT", null],
    ["Sun, 01 Jun 2025 00:60:00 GMT", null],
    ["Sun, 01 Foo 2025 00:01:00 GMT", null],
    ["Sun, 01 Jun 2025 00:01:00 PST", null],
    ["Sun, 1 Jun 2025 00:01:00 GMT", null],
    ["Sun, 01 Jun 2025 00:01 GMT", null],
  ];
  for (const [value, expected] of cases) assert.equal(parseRetryAfter(value, NOW), expected, value);
});

test("parseRetryAfter: a date rounds up to whole seconds; an invalid clock gives null for dates only", () => {
  const now = new Date("2025-06-01T00:00:00.400Z");
  assert.equal(parseRetryAfter("Sun, 01 Jun 2025 00:01:00 GMT", now), 60); // 59.6 s -> 60
  const bad = new Date(Number.NaN);
  assert.equal(parseRetryAfter("Sun, 01 Jun 2025 00:01:00 GMT", bad), null);
  assert.equal(parseRetryAfter("30", bad), 30);
});

test("classify: Retry-After on HTTP failures", () => {
  const c503 = classify(http(503, { retryAfter: "120" }), NOW);
  assert.equal(c503.transient, true);
  assert.equal(c503.retryAfterSeconds, 120);
  assert.match(c503.message, /120 s/);

  assert.equal(classify(http(429, { retryAfter: "Sun, 01 Jun 2025 00:05:00 GMT" }), NOW).retryAfterSeconds, 300);
  assert.equal(classify(http(429, { retryAfter: "Sun, 01 Jun 2025 00:05:00 GMT" }), new Date("2025-06-01T00:04:00Z")).retryAfterSeconds, 60);
  assert.equal(classify(http(503, { retryAfter: "Sat, 31 May 2025 00:00:00 GMT" }), NOW).retryAfterSeconds, 0);
  assert.equal(classify(http(503, { retryAfter: "later" }), NOW).retryAfterSeconds, null);
  assert.equal(classify(http(503, { retryAfter: null }), NOW).retryAfterSeconds, null);
  assert.equal(classify(http(503, { retryAfter: "99999999" }), NOW).retryAfterSeconds, 604_800);
  assert.equal(classify(http(503), NOW).retryAfterSeconds, null);
});

test("a transient classification drives the state machine: retry after max(minimumRetryDelay, Retry-After)", () => {
  const job: JobSnapshot = {
    state: "TRANSFERRING",
    type: "DOWNLOAD",
    filesTotal: 1,
    filesTransferred: 0,
    errorCount: 0,
    minimumRetryDelay: 60,
    noProgressTimeout: 86_400,
    noProgressSince: null,
    retryAt: null,
    activeSince: NOW,
    activeSeconds: 0,
    maximumDownloadTime: 7_776_000,
  };
  const c = classify(http(503, { retryAfter: "300", url: "http://example.com/f" }), NOW);
  assert.equal(c.transient, true);
  const d = decide(job, { type: "TRANSIENT_FAILURE", error: toErrorInfo(c, "file-1"), retryAfterSeconds: c.retryAfterSeconds ?? undefined }, NOW);
  assert.equal(d.kind, "transition");
  if (d.kind !== "transition") return;
  assert.equal(d.to, "TRANSIENT_ERROR");
  assert.deepEqual(d.patch.retryAt, new Date(NOW.getTime() + 300_000));
  assert.deepEqual(d.patch.error, { context: "REMOTE_FILE", code: "HTTP_503", message: c.message, fileId: "file-1", httpStatus: 503 });
});

// ---------------------------------------------------------------------------
// Messages: no credentials, no long query strings

test("messages never contain a password from a URL", () => {
  const failures: Failure[] = [
    http(404, { url: "http://user:secret@host/x" }),
    http(503, { url: "https://user:secret@host:8443/x?y=1" }),
    http(302, { url: "http://user:secret@host/x" }),
    http(200, { url: "http://user:secret@host/x" }),
    http(416, { url: "http://user:secret@host/x" }),
    http(999, { url: "http://user:secret@host/x" }),
    http(404, { url: "http://user:p@ss:secret@host/x" }), // raw @ in the password: the last @ ends the userinfo
    http(404, { url: "http://secret@host/x" }), // token as user name
    http(404, { url: "HTTP://USER:secret@HOST/x" }),
    http(404, { url: "http://user:sec ret@host/x" }), // not a valid URL, still stripped
    http(404, { url: "//user:secret@host/x" }),
    { kind: "badRedirect", location: "ftp://user:secret@host/x" },
    { kind: "badRedirect", location: "//user:secret@host/x" },
    { kind: "unknown", message: "request to http://user:secret@host/x failed" },
    { kind: "unknown", message: `${"a".repeat(290)} http://user:secret@host/x` }, // a cut must not expose it
    { kind: "network", code: "ECONNREFUSED", message: "connect ECONNREFUSED for https://user:secret@host/" },
    { kind: "network", code: "EWEIRD", message: "see https://user:secret@host/" },
    { kind: "protocol", message: "Content-Range mismatch from http://user:secret@host/x" },
    { kind: "local", code: "ENOENT", path: "/tmp/x", message: "while copying http://user:secret@host/x" },
  ];
  for (const f of failures) {
    const { message } = classify(f, NOW);
    assert.ok(!message.includes("secret"), `no password in: ${message}`);
    assert.ok(!/user:|USER:/.test(message), `no user info in: ${message}`);
  }
  assert.match(classify(http(404, { url: "http://user:secret@host/x" }), NOW).message, /http:\/\/host\/x/);
  assert.match(classify(http(404, { url: "http://user:p@ss:secret@host/x" }), NOW).message, /http:\/\/host\/x/);
});

test("messages cut query strings longer than 100 characters", () => {
  const long = "q=" + "a".repeat(500);
  const { message } = classify(http(404, { url: `http://host/x?${long}#frag` }), NOW);
  assert.ok(!message.includes("a".repeat(99)), "the query is cut");
  assert.ok(message.includes(`?q=${"a".repeat(98)}…`), message);
  const short = "q=" + "b".repeat(98); // exactly 100 characters: kept
  assert.ok(classify(http(404, { url: `http://host/x?${short}` }), NOW).message.includes(`?${short};`));
  // in free text too
  const free = classify({ kind: "unknown", message: `failed: https://host/x?${long} (oops)` }, NOW).message;
  assert.ok(!free.includes("a".repeat(99)), free);
});

test("sanitizeUrl", () => {
  assert.equal(sanitizeUrl("http://user:secret@host/x"), "http://host/x");
  assert.equal(sanitizeUrl("https://host/x?a=1"), "https://host/x?a=1");
  assert.equal(sanitizeUrl("http://u:a@b@host/p?x@y"), "http://host/p?x@y");
  assert.equal(sanitizeUrl("http://host/p@q"), "http://host/p@q"); // an @ in the path is not user info
  assert.equal(sanitizeUrl(`http://h/?${"z".repeat(150)}`), `http://h/?${"z".repeat(100)}…`);
  const once = sanitizeUrl(`http://h/?${"z".repeat(150)}`);
  assert.equal(sanitizeUrl(once), once, "idempotent");
});

test("messages say what happened and what to do", () => {
  const m404 = classify(http(404, { url: "http://example.com/file.iso" }), NOW).message;
  assert.match(m404, /404 Not Found/);
  assert.match(m404, /http:\/\/example\.com\/file\.iso/);
  assert.match(m404, /resume/);
  assert.match(classify(http(503), NOW).message, /retr/);
  assert.match(classify(local("ENOSPC"), NOW).message, /free some space/);
  assert.match(classify(local("EACCES"), NOW).message, /\/data\/out\.bin/);
  assert.match(classify({ kind: "shortBody", expected: 1000, received: 400 }, NOW).message, /400 of 1000/);
  assert.match(classify({ kind: "timeout", phase: "body", seconds: 120 }, NOW).message, /120 s/);
  // long free text is cut
  assert.ok(classify({ kind: "unknown", message: "x".repeat(5000) }, NOW).message.length < 600);
});

// ---------------------------------------------------------------------------
// failureFromError on real error objects

test("failureFromError: a Node error with a network code", () => {
  const f = failureFromError(Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }), "network");
  assert.deepEqual(f, { kind: "network", code: "ECONNRESET", message: "read ECONNRESET" });
  assert.deepEqual(pick(classify(f, NOW)), [T, GT, "CONNECTION_RESET", null]);
});

test("failureFromError: undici's TypeError('fetch failed') with the socket error as cause", () => {
  const err = new TypeError("fetch failed", { cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:80"), { code: "ECONNREFUSED" }) });
  const f = failureFromError(err, "network");
  assert.equal(f.kind, "network");
  assert.equal(f.kind === "network" && f.code, "ECONNREFUSED");
  assert.deepEqual(pick(classify(f, NOW)), [T, GT, "CONNECTION_REFUSED", null]);

  const timeout = new TypeError("fetch failed", { cause: Object.assign(new Error("Connect Timeout Error"), { code: "UND_ERR_CONNECT_TIMEOUT" }) });
  assert.deepEqual(pick(classify(failureFromError(timeout, "network"), NOW)), [T, GT, "CONNECTION_TIMEOUT", null]);

  const body = new TypeError("terminated", { cause: Object.assign(new Error("Body Timeout Error"), { code: "UND_ERR_BODY_TIMEOUT" }) });
  assert.deepEqual(pick(classify(failureFromError(body, "network"), NOW)), [T, GT, "STALLED", null]);
});

test("failureFromError: an AggregateError cause (happy eyeballs) and deep cause chains", () => {
  const refused = (addr: string) => Object.assign(new Error(`connect ECONNREFUSED ${addr}`), { code: "ECONNREFUSED" });
  const agg = new TypeError("fetch failed", { cause: new AggregateError([refused("::1:80"), refused("127.0.0.1:80")]) });
  assert.deepEqual(pick(classify(failureFromError(agg, "network"), NOW)), [T, GT, "CONNECTION_REFUSED", null]);

  const deep = new Error("a", { cause: new Error("b", { cause: new Error("c", { cause: Object.assign(new Error("d"), { code: "ENOTFOUND" }) }) }) });
  assert.deepEqual(pick(classify(failureFromError(deep, "network"), NOW)), [T, GT, "DNS_FAILURE", null]);

  const cyclic = new Error("loop") as Error & { cause?: unknown };
  cyclic.cause = cyclic;
  assert.equal(failureFromError(cyclic, "network").kind, "unknown");
});

test("failureFromError: a real ECONNREFUSED from fetch", async () => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address === "object");
  await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
  const err = await fetch(`http://127.0.0.1:${address.port}/`).then(
    () => assert.fail("the port should be closed"),
    (e: unknown) => e,
  );
  const f = failureFromError(err, "network");
  assert.deepEqual(f.kind === "network" ? f.code : f, "ECONNREFUSED");
  assert.deepEqual(pick(classify(f, NOW)), [T, GT, "CONNECTION_REFUSED", null]);
});

test("failureFromError: a real fs error", async () => {
  const err = await fs.promises.open("/nonexistent-dir/x", "r").then(
    () => assert.fail("the file should not exist"),
    (e: unknown) => e,
  );
  const f = failureFromError(err, "local");
  assert.equal(f.kind, "local");
  if (f.kind !== "local") return;
  assert.equal(f.code, "ENOENT");
  assert.equal(f.path, "/nonexistent-dir/x");
  const c = classify(f, NOW);
  assert.deepEqual(pick(c), [F, LF, "LOCAL_FILE_ERROR", null]);
  assert.match(c.message, /\/nonexistent-dir\/x/);
  // an fs error (it has a path) surfacing from a network pipeline is still local
  assert.equal(failureFromError(err, "network").kind, "local");
});

test("failureFromError: fs-only codes are local even from the network side; permission codes", () => {
  const enospc = Object.assign(new Error("no space left on device, write"), { code: "ENOSPC", syscall: "write" });
  assert.deepEqual(pick(classify(failureFromError(enospc, "network"), NOW)), [F, LF, "DISK_FULL", null]);
  const eacces = Object.assign(new Error("permission denied"), { code: "EACCES", path: "/root/x" });
  assert.deepEqual(pick(classify(failureFromError(eacces, "local"), NOW)), [F, LF, "LOCAL_PERMISSION_DENIED", null]);
  const eperm = Object.assign(new Error("operation not permitted"), { code: "EPERM" });
  assert.deepEqual(pick(classify(failureFromError(eperm, "local"), NOW)), [F, LF, "LOCAL_PERMISSION_DENIED", null]);
  // where: "local" means local, whatever the code
  const reset = Object.assign(new Error("x"), { code: "ECONNRESET" });
  assert.deepEqual(pick(classify(failureFromError(reset, "local"), NOW)), [F, LF, "LOCAL_FILE_ERROR", null]);
});

test("failureFromError: timeouts, aborts and unrecognised errors", () => {
  const timeout = new DOMException("The operation was aborted due to timeout", "TimeoutError");
  assert.deepEqual(pick(classify(failureFromError(timeout, "network"), NOW)), [T, GT, "CONNECTION_TIMEOUT", null]);

  const abort = new DOMException("This operation was aborted", "AbortError");
  assert.equal(failureFromError(abort, "network").kind, "unknown");

  const plain = failureFromError(new Error("boom"), "network");
  assert.deepEqual(plain, { kind: "unknown", message: "boom" });
  assert.deepEqual(pick(classify(plain, NOW)), [F, UN, "UNKNOWN", null]);

  const odd = failureFromError(Object.assign(new Error("weird"), { code: "ERR_SOMETHING" }), "network");
  assert.equal(odd.kind, "unknown");
  assert.match(odd.kind === "unknown" ? odd.message : "", /weird.*ERR_SOMETHING/);

  const numericCode = failureFromError(Object.assign(new Error("numeric"), { code: 23 }), "network");
  assert.equal(numericCode.kind, "unknown");

  for (const thrown of ["a string", null, undefined, 42, { no: "message" }]) {
    const f = failureFromError(thrown, "network");
    assert.equal(f.kind, "unknown", String(thrown));
    assert.ok(f.kind === "unknown" && f.message.length > 0);
  }

  // a real TypeError whose message quotes a URL with credentials
  const withCredentials = (() => {
    try {
      new Request("http://user:secret@host/x");
      return undefined;
    } catch (e) {
      return e;
    }
  })();
  assert.ok(withCredentials instanceof Error);
  const c = classify(failureFromError(withCredentials, "network"), NOW);
  assert.equal(c.code, "UNKNOWN");
  assert.ok(!c.message.includes("secret"), c.message);
});

// ---------------------------------------------------------------------------
// Purity

test("classify is pure: same input, same output; input and clock untouched", () => {
  for (const [name, failure] of CASES) {
    const frozen = failure === null ? failure : (Object.freeze({ ...failure }) as Failure);
    const now = new Date(NOW.getTime());
    const a = classify(frozen, now);
    const b = classify(frozen, new Date(NOW.getTime()));
    assert.deepEqual(a, b, name);
    assert.equal(now.getTime(), NOW.getTime(), `${name}: now untouched`);
  }
  const f: Failure = Object.freeze({ kind: "http", status: 503, retryAfter: "Sun, 01 Jun 2025 00:10:00 GMT" });
  assert.deepEqual(classify(f, NOW), classify(f, NOW));
  assert.equal(classify(f, NOW).retryAfterSeconds, 600);
  assert.equal(classify(f, new Date("2025-06-01T00:09:00Z")).retryAfterSeconds, 60, "only the given clock matters");
});

test("toErrorInfo", () => {
  const c = classify(http(404, { url: "http://example.com/a" }), NOW);
  assert.deepEqual(toErrorInfo(c, "file-7"), { context: "REMOTE_FILE", code: "HTTP_404", message: c.message, fileId: "file-7", httpStatus: 404 });
  const l = classify(local("ENOSPC"), NOW);
  assert.deepEqual(toErrorInfo(l, null), { context: "LOCAL_FILE", code: "DISK_FULL", message: l.message, fileId: null, httpStatus: null });
});
