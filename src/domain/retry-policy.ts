/**
 * Failure classification: turns whatever went wrong in an HTTP download into
 * what the state machine (./job-state.ts) needs: transient or fatal, a BITS
 * error context, a stable code, the HTTP status, a message for a human, and
 * the server's Retry-After. Pure: no I/O, no clock (time comes in as `now`).
 *
 * The worker calls `failureFromError` on a thrown error (or builds a Failure
 * itself), then `classify`, then sends TRANSIENT_FAILURE (with
 * retryAfterSeconds) or FATAL_FAILURE carrying `toErrorInfo(...)`. The state
 * machine then waits max(minimumRetryDelay, Retry-After) and turns transient
 * errors fatal after NoProgressTimeout (job-state.ts note [4]).
 *
 * THE TABLE (ERROR_CODE_TABLE below is the same list, for docs and the API)
 *
 *   code                     transient  context                 from
 *   HTTP_<status> 5xx        yes        REMOTE_FILE             http 500-599
 *   HTTP_408, HTTP_429       yes        REMOTE_FILE             http 408, 429
 *   HTTP_<status> other 4xx  no         REMOTE_FILE             http 400-499 except 408, 416, 429
 *   RANGE_NOT_SATISFIABLE    no         REMOTE_FILE             http 416, rangeNotSatisfiable [1]
 *   BAD_REDIRECT             no         REMOTE_FILE             http 3xx (except 304), badRedirect
 *   TOO_MANY_REDIRECTS       no         REMOTE_FILE             tooManyRedirects
 *   INVALID_SERVER_RESPONSE  no         GENERAL_TRANSPORT       http 1xx/2xx/304/out of range, protocol, HPE_* [2]
 *   CONNECTION_REFUSED       yes        GENERAL_TRANSPORT       ECONNREFUSED
 *   CONNECTION_RESET         yes        GENERAL_TRANSPORT       ECONNRESET, EPIPE, ECONNABORTED, UND_ERR_SOCKET, ...
 *   CONNECTION_TIMEOUT       yes        GENERAL_TRANSPORT       ETIMEDOUT, UND_ERR_CONNECT_TIMEOUT, timeout connect
 *   NETWORK_UNREACHABLE      yes        GENERAL_TRANSPORT       EHOSTUNREACH, ENETUNREACH, ENETDOWN, EHOSTDOWN
 *   DNS_FAILURE              yes        GENERAL_TRANSPORT       ENOTFOUND, EAI_AGAIN, ... (BITS retries DNS failures)
 *   STALLED                  yes        GENERAL_TRANSPORT       timeout headers/body, UND_ERR_HEADERS/BODY_TIMEOUT
 *   SHORT_BODY               yes        GENERAL_TRANSPORT       shortBody, UND_ERR_RES_CONTENT_LENGTH_MISMATCH
 *   TLS_ERROR                no         GENERAL_TRANSPORT       certificate / TLS handshake codes [3]
 *   LOCAL_PERMISSION_DENIED  no         LOCAL_FILE              local EACCES, EPERM, EROFS
 *   DISK_FULL                no         LOCAL_FILE              local ENOSPC, EDQUOT
 *   LOCAL_FILE_ERROR         no         LOCAL_FILE              any other local code [4]
 *   CHECKSUM_MISMATCH        no         REMOTE_FILE             checksum [5]
 *   TOO_LARGE                no         GENERAL_QUEUE_MANAGER   tooLarge (a policy limit)
 *   DESTINATION_NOT_ALLOWED  no         GENERAL_QUEUE_MANAGER   destinationNotAllowed (SSRF guard)
 *   UNKNOWN                  no         UNKNOWN                 unknown, unrecognised network codes, bad input
 *
 * [1] The worker restarts the file from byte 0 once before reporting a 416;
 *     the classification itself is fatal.
 * [2] BITS lists "invalid server response" as transient; haul treats it as
 *     fatal because a server that answers wrongly usually keeps doing so. A
 *     304 is not a redirect (haul never sends a conditional request), so it
 *     is an invalid response rather than a bad redirect.
 * [3] Not retried: an untrusted or expired certificate needs the operator.
 * [4] Including EMFILE/EBUSY/EIO: local errors are fatal so the user sees
 *     them; resume retries.
 * [5] The bytes the server sent are not the file that was asked for (BITS:
 *     validation FALSE on origin content -> ERROR).
 *
 * Messages never carry credentials (user:password@ is stripped from every
 * URL-like token) and query strings longer than 100 characters are cut.
 */
import type { ErrorContext, JobErrorInfo } from "./job-state.js";

/** What went wrong, as the transfer code observed it. `failureFromError` builds one from a thrown error. */
export type Failure =
  | { kind: "http"; status: number; retryAfter?: string | null; url?: string } // a status the client cannot use (>= 400, or unexpected 1xx/2xx/3xx)
  | { kind: "network"; code: string; message?: string } // Node/undici error code
  | { kind: "timeout"; phase: "connect" | "headers" | "body"; seconds: number } // no bytes for too long
  | { kind: "shortBody"; expected: number; received: number } // closed before Content-Length bytes
  | { kind: "tooManyRedirects"; limit: number }
  | { kind: "badRedirect"; location: string | null } // missing/invalid Location, or a non-http(s) scheme
  | { kind: "protocol"; message: string } // e.g. a Content-Range that does not match the request
  | { kind: "rangeNotSatisfiable"; size: number | null } // 416 on resume
  | { kind: "local"; code: string; path?: string; message?: string } // fs error code
  | { kind: "checksum"; expected: string; actual: string }
  | { kind: "destinationNotAllowed"; address: string } // SSRF guard refused the connected address
  | { kind: "tooLarge"; limit: number }
  | { kind: "unknown"; message: string };

export interface Classification {
  transient: boolean;
  context: ErrorContext;
  /** Stable UPPER_SNAKE code; see ERROR_CODE_TABLE (HTTP_<status> is documented as HTTP_4xx / HTTP_5xx). */
  code: string;
  httpStatus: number | null;
  /** One sentence: what happened and what to do. No credentials; long query strings cut. */
  message: string;
  /** From Retry-After (delta-seconds or HTTP-date relative to `now`), clamped to [0, 7 days]; null when absent or unparseable. */
  retryAfterSeconds: number | null;
}

export interface ErrorCodeInfo {
  transient: boolean;
  context: ErrorContext;
  meaning: string;
}

/** Longest Retry-After honoured: 7 days. */
export const MAX_RETRY_AFTER_SECONDS = 86_400 * 7;
const MAX_QUERY_CHARS = 100;
const MAX_FREE_TEXT_CHARS = 300;

const HTTP_4XX = "HTTP_4xx";
const HTTP_5XX = "HTTP_5xx";

/** Every code `classify` can return. HTTP_<status> codes are covered by the HTTP_4xx / HTTP_5xx pattern entries. */
export const ERROR_CODE_TABLE: Readonly<Record<string, Readonly<ErrorCodeInfo>>> = deepFreeze({
  [HTTP_4XX]: {
    transient: false,
    context: "REMOTE_FILE",
    meaning: "HTTP_<status> for a 4xx status not listed separately: the server refused the request; fix the URL or the server",
  },
  [HTTP_5XX]: {
    transient: true,
    context: "REMOTE_FILE",
    meaning: "HTTP_<status> for any 500-599 status: the server failed; retried after max(minimumRetryDelay, Retry-After)",
  },
  HTTP_401: { transient: false, context: "REMOTE_FILE", meaning: "401 Unauthorized: the server wants credentials" },
  HTTP_403: { transient: false, context: "REMOTE_FILE", meaning: "403 Forbidden: the server refuses access to the file" },
  HTTP_404: { transient: false, context: "REMOTE_FILE", meaning: "404 Not Found: no file at the URL" },
  HTTP_407: { transient: false, context: "REMOTE_FILE", meaning: "407 Proxy Authentication Required: the proxy wants credentials" },
  HTTP_408: { transient: true, context: "REMOTE_FILE", meaning: "408 Request Timeout: the server gave up waiting; retried" },
  HTTP_410: { transient: false, context: "REMOTE_FILE", meaning: "410 Gone: the file was removed for good" },
  HTTP_429: { transient: true, context: "REMOTE_FILE", meaning: "429 Too Many Requests: rate limited; retried, honouring Retry-After" },
  HTTP_500: { transient: true, context: "REMOTE_FILE", meaning: "500 Internal Server Error; retried" },
  HTTP_502: { transient: true, context: "REMOTE_FILE", meaning: "502 Bad Gateway; retried" },
  HTTP_503: { transient: true, context: "REMOTE_FILE", meaning: "503 Service Unavailable; retried, honouring Retry-After" },
  HTTP_504: { transient: true, context: "REMOTE_FILE", meaning: "504 Gateway Timeout; retried" },
  RANGE_NOT_SATISFIABLE: {
    transient: false,
    context: "REMOTE_FILE",
    meaning: "416 on resume: the remote file is shorter than the bytes already transferred (the worker restarts the file from 0 once first)",
  },
  BAD_REDIRECT: {
    transient: false,
    context: "REMOTE_FILE",
    meaning: "a redirect without a usable Location (missing, invalid, or not http/https)",
  },
  TOO_MANY_REDIRECTS: { transient: false, context: "REMOTE_FILE", meaning: "the redirect chain is longer than the limit (or loops)" },
  INVALID_SERVER_RESPONSE: {
    transient: false,
    context: "GENERAL_TRANSPORT",
    meaning: "the server's response breaks HTTP or the request: unexpected status, wrong or merged Content-Range, malformed response",
  },
  CONNECTION_REFUSED: { transient: true, context: "GENERAL_TRANSPORT", meaning: "nothing accepted the connection (ECONNREFUSED)" },
  CONNECTION_RESET: {
    transient: true,
    context: "GENERAL_TRANSPORT",
    meaning: "the connection was reset or closed mid-request (ECONNRESET, EPIPE, ECONNABORTED, socket errors)",
  },
  CONNECTION_TIMEOUT: { transient: true, context: "GENERAL_TRANSPORT", meaning: "connecting took too long (ETIMEDOUT, connect timeout)" },
  NETWORK_UNREACHABLE: {
    transient: true,
    context: "GENERAL_TRANSPORT",
    meaning: "no route to the host or network (EHOSTUNREACH, ENETUNREACH, ENETDOWN)",
  },
  DNS_FAILURE: {
    transient: true,
    context: "GENERAL_TRANSPORT",
    meaning: "the host name did not resolve (ENOTFOUND, EAI_AGAIN); retried, as BITS does",
  },
  STALLED: {
    transient: true,
    context: "GENERAL_TRANSPORT",
    meaning: "the server sent no headers or body bytes for too long",
  },
  SHORT_BODY: {
    transient: true,
    context: "GENERAL_TRANSPORT",
    meaning: "the server closed the connection before sending Content-Length bytes; resumed from where it stopped",
  },
  TLS_ERROR: {
    transient: false,
    context: "GENERAL_TRANSPORT",
    meaning: "the TLS handshake or the server certificate failed verification (expired, self-signed, wrong host name)",
  },
  LOCAL_PERMISSION_DENIED: {
    transient: false,
    context: "LOCAL_FILE",
    meaning: "the service may not write the local file (EACCES, EPERM, EROFS)",
  },
  DISK_FULL: { transient: false, context: "LOCAL_FILE", meaning: "no space or quota left for the local file (ENOSPC, EDQUOT)" },
  LOCAL_FILE_ERROR: {
    transient: false,
    context: "LOCAL_FILE",
    meaning: "any other file-system error on the local file (ENOENT, EISDIR, ENOTDIR, EEXIST, EMFILE, ENAMETOOLONG, EIO, ...)",
  },
  CHECKSUM_MISMATCH: {
    transient: false,
    context: "REMOTE_FILE",
    meaning: "the downloaded bytes do not match the expected checksum",
  },
  TOO_LARGE: { transient: false, context: "GENERAL_QUEUE_MANAGER", meaning: "the file is larger than the allowed maximum size" },
  DESTINATION_NOT_ALLOWED: {
    transient: false,
    context: "GENERAL_QUEUE_MANAGER",
    meaning: "policy forbids connecting to the server's address (private, loopback or otherwise blocked)",
  },
  UNKNOWN: { transient: false, context: "UNKNOWN", meaning: "an error haul does not recognise; see the message" },
});

/**
 * The table entry for a code, resolving HTTP_<status> to its specific entry or
 * to the HTTP_4xx / HTTP_5xx pattern. undefined for a code not in the table.
 */
export function errorCodeInfo(code: string): Readonly<ErrorCodeInfo> | undefined {
  if (Object.hasOwn(ERROR_CODE_TABLE, code)) return ERROR_CODE_TABLE[code];
  const m = /^HTTP_([45])\d\d$/.exec(code);
  if (m) return ERROR_CODE_TABLE[m[1] === "4" ? HTTP_4XX : HTTP_5XX];
  return undefined;
}

// ---------------------------------------------------------------------------
// Error codes from Node / undici / fs

/** Network error codes (Node net/dns/tls, undici) -> classification code. Anything else is UNKNOWN. */
const NETWORK_CODES: Readonly<Record<string, string>> = Object.freeze({
  ECONNREFUSED: "CONNECTION_REFUSED",

  ECONNRESET: "CONNECTION_RESET",
  EPIPE: "CONNECTION_RESET",
  ECONNABORTED: "CONNECTION_RESET",
  ENETRESET: "CONNECTION_RESET",
  UND_ERR_SOCKET: "CONNECTION_RESET",
  UND_ERR_CLOSED: "CONNECTION_RESET",
  ERR_STREAM_PREMATURE_CLOSE: "CONNECTION_RESET",
  ERR_HTTP2_STREAM_ERROR: "CONNECTION_RESET",
  ERR_HTTP2_SESSION_ERROR: "CONNECTION_RESET",
  ERR_HTTP2_GOAWAY_SESSION: "CONNECTION_RESET",

  ETIMEDOUT: "CONNECTION_TIMEOUT",
  ESOCKETTIMEDOUT: "CONNECTION_TIMEOUT",
  UND_ERR_CONNECT_TIMEOUT: "CONNECTION_TIMEOUT",

  UND_ERR_HEADERS_TIMEOUT: "STALLED",
  UND_ERR_BODY_TIMEOUT: "STALLED",

  EHOSTUNREACH: "NETWORK_UNREACHABLE",
  ENETUNREACH: "NETWORK_UNREACHABLE",
  ENETDOWN: "NETWORK_UNREACHABLE",
  EHOSTDOWN: "NETWORK_UNREACHABLE",

  // getaddrinfo and c-ares (node:dns) codes. BITS retries DNS failures.
  ENOTFOUND: "DNS_FAILURE",
  EAI_AGAIN: "DNS_FAILURE",
  EAI_FAIL: "DNS_FAILURE",
  EAI_NONAME: "DNS_FAILURE",
  EAI_NODATA: "DNS_FAILURE",
  ENODATA: "DNS_FAILURE",
  ESERVFAIL: "DNS_FAILURE",
  ETIMEOUT: "DNS_FAILURE",
  EREFUSED: "DNS_FAILURE",

  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: "SHORT_BODY",

  UND_ERR_INVALID_RETURN_VALUE: "INVALID_SERVER_RESPONSE",
  ERR_INVALID_HTTP_RESPONSE: "INVALID_SERVER_RESPONSE",
  ERR_HTTP2_PROTOCOL_ERROR: "INVALID_SERVER_RESPONSE",

  EPROTO: "TLS_ERROR",
  CERT_HAS_EXPIRED: "TLS_ERROR",
  CERT_NOT_YET_VALID: "TLS_ERROR",
  CERT_REVOKED: "TLS_ERROR",
  CERT_UNTRUSTED: "TLS_ERROR",
  CERT_REJECTED: "TLS_ERROR",
  CERT_SIGNATURE_FAILURE: "TLS_ERROR",
  DEPTH_ZERO_SELF_SIGNED_CERT: "TLS_ERROR",
  SELF_SIGNED_CERT_IN_CHAIN: "TLS_ERROR",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "TLS_ERROR",
  UNABLE_TO_GET_ISSUER_CERT: "TLS_ERROR",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "TLS_ERROR",
  ERR_TLS_CERT_ALTNAME_INVALID: "TLS_ERROR",
  ERR_TLS_HANDSHAKE_TIMEOUT: "TLS_ERROR",
  ERR_SSL_WRONG_VERSION_NUMBER: "TLS_ERROR",
});

/** A network code -> classification code, or undefined when haul does not know it. */
function networkCode(code: string): string | undefined {
  if (Object.hasOwn(NETWORK_CODES, code)) return NETWORK_CODES[code];
  if (code.startsWith("HPE_")) return "INVALID_SERVER_RESPONSE"; // Node's llhttp parser: malformed response
  if (code.startsWith("ERR_SSL_") || code.startsWith("ERR_TLS_") || code.startsWith("CERT_")) return "TLS_ERROR";
  return undefined;
}

/** fs codes that can only be about a local file, whatever the caller thought it was doing. */
const LOCAL_ONLY_CODES: ReadonlySet<string> = new Set(["ENOSPC", "EDQUOT", "EROFS", "EISDIR", "ENOTDIR", "ENAMETOOLONG", "ENOTEMPTY", "EXDEV", "EFBIG"]);
const PERMISSION_CODES: ReadonlySet<string> = new Set(["EACCES", "EPERM", "EROFS"]);
const DISK_FULL_CODES: ReadonlySet<string> = new Set(["ENOSPC", "EDQUOT"]);
/** An errno-style code (EACCES, ENOSPC, ...), as fs errors carry. */
const ERRNO_CODE = /^E[A-Z0-9]+$/;

// ---------------------------------------------------------------------------
// classify

/** Classifies one failure. Pure: the same failure and `now` always give the same answer. */
export function classify(failure: Failure, now: Date): Classification {
  const c = classifyRaw(failure, now);
  return { ...c, message: sanitizeText(c.message) };
}

function classifyRaw(failure: Failure, now: Date): Classification {
  // Callers may be plain JS: never throw on a malformed failure.
  if (typeof failure !== "object" || failure === null) {
    return result("UNKNOWN", `an unrecognised failure was reported (${describe(failure)}); ${RESUME_OR_REPORT}`);
  }
  switch (failure.kind) {
    case "http":
      return classifyHttp(failure, now);

    case "network": {
      const code = text(failure.code);
      const detail = failure.message ? `: ${clip(text(failure.message))}` : "";
      const mapped = networkCode(code);
      if (mapped === undefined) {
        return result("UNKNOWN", `the transfer failed with network error ${code || "(no code)"}${detail}; ${RESUME_OR_REPORT}`);
      }
      return result(mapped, `${NETWORK_WHAT[mapped] ?? "the network failed"} (${code}${detail}); ${whatToDo(mapped)}`);
    }

    case "timeout": {
      const secs = finiteOr(failure.seconds, null);
      const after = secs === null ? "" : ` after ${secs} s`;
      if (failure.phase === "connect") {
        return result("CONNECTION_TIMEOUT", `connecting to the server timed out${after}; ${whatToDo("CONNECTION_TIMEOUT")}`);
      }
      const what = failure.phase === "headers" ? "response headers" : "body bytes";
      return result("STALLED", `the server sent no ${what}${after}, so the transfer was stopped; ${whatToDo("STALLED")}`);
    }

    case "shortBody":
      return result(
        "SHORT_BODY",
        `the server closed the connection after ${num(failure.received)} of ${num(failure.expected)} bytes; ${whatToDo("SHORT_BODY")}`,
      );

    case "tooManyRedirects":
      return result(
        "TOO_MANY_REDIRECTS",
        `the server redirected more than ${num(failure.limit)} times (or in a loop); point the file at its final URL, then resume the job`,
      );

    case "badRedirect": {
      const loc = failure.location;
      const what =
        loc === null || loc === undefined || loc === ""
          ? "the server sent a redirect without a Location header"
          : `the server redirected to ${quote(loc)}, which is not a usable http or https URL`;
      return result("BAD_REDIRECT", `${what}; point the file at a URL that answers directly, then resume the job`);
    }

    case "protocol":
      return result(
        "INVALID_SERVER_RESPONSE",
        `the server's response was invalid: ${clip(text(failure.message)) || "no detail"}; check the server (it must honour Range requests), then resume the job`,
      );

    case "rangeNotSatisfiable": {
      const size = failure.size;
      const sizeText = typeof size === "number" && Number.isFinite(size) ? ` (the server says the file has ${size} bytes)` : "";
      return result(
        "RANGE_NOT_SATISFIABLE",
        `the server answered 416 Range Not Satisfiable when resuming${sizeText}, so the remote file is shorter than the part already transferred (it probably changed); resume the job to try again, or cancel it`,
        416,
      );
    }

    case "local":
      return classifyLocal(failure);

    case "checksum":
      return result(
        "CHECKSUM_MISMATCH",
        `the downloaded file's checksum is ${clip(text(failure.actual), 200)} but ${clip(text(failure.expected), 200)} was expected; check the URL and the expected checksum, then resume the job to download it again`,
      );

    case "destinationNotAllowed":
      return result(
        "DESTINATION_NOT_ALLOWED",
        `the server's address ${clip(text(failure.address), 100)} is not allowed by policy; use a URL on an allowed host, or ask the operator to allow it`,
      );

    case "tooLarge":
      return result(
        "TOO_LARGE",
        `the file is larger than the limit of ${num(failure.limit)} bytes; ask the operator to raise the limit, or complete the job to keep the other files`,
      );

    case "unknown":
      return result("UNKNOWN", `the transfer failed: ${clip(text(failure.message)) || "no detail"}; ${RESUME_OR_REPORT}`);

    default: {
      const kind: unknown = (failure as { kind?: unknown }).kind;
      return result("UNKNOWN", `an unrecognised failure of kind ${describe(kind)} was reported; ${RESUME_OR_REPORT}`);
    }
  }
}

const RESUME_OR_REPORT = "resume the job to try again, and report it if it keeps happening";

const NETWORK_WHAT: Readonly<Record<string, string>> = {
  CONNECTION_REFUSED: "the server refused the connection",
  CONNECTION_RESET: "the connection to the server was reset",
  CONNECTION_TIMEOUT: "connecting to the server timed out",
  NETWORK_UNREACHABLE: "the server's network is unreachable",
  DNS_FAILURE: "the server's host name could not be resolved",
  STALLED: "the server stopped sending data",
  SHORT_BODY: "the server closed the connection before the whole body arrived",
  INVALID_SERVER_RESPONSE: "the server sent a malformed HTTP response",
  TLS_ERROR: "the TLS connection failed",
};

function whatToDo(code: string): string {
  const info = ERROR_CODE_TABLE[code];
  if (info?.transient) {
    return "haul retries it after the job's retry delay (if it keeps failing the job goes to ERROR after its no-progress timeout)";
  }
  switch (code) {
    case "TLS_ERROR":
      return "fix the server's certificate (or use a URL whose certificate is trusted), then resume the job";
    case "INVALID_SERVER_RESPONSE":
      return "fix or replace the server, then resume the job";
    default:
      return RESUME_OR_REPORT;
  }
}

function classifyHttp(f: Extract<Failure, { kind: "http" }>, now: Date): Classification {
  const status = f.status;
  const where = typeof f.url === "string" && f.url !== "" ? ` for ${sanitizeUrl(f.url)}` : "";
  const retryAfterSeconds = parseRetryAfter(f.retryAfter, now);

  if (typeof status !== "number" || !Number.isInteger(status) || status < 100 || status > 599) {
    const shown = typeof status === "number" && Number.isInteger(status) && status >= 0 && status <= 999 ? status : null;
    return result(
      "INVALID_SERVER_RESPONSE",
      `the server answered with an invalid HTTP status ${describe(status)}${where}; fix or replace the server, then resume the job`,
      shown,
      retryAfterSeconds,
    );
  }
  const answered = `the server answered ${status}${reason(status)}${where}`;

  if (status < 300 || status === 304) {
    return result(
      "INVALID_SERVER_RESPONSE",
      `${answered}, which haul cannot use for this request; fix or replace the server, then resume the job`,
      status,
      retryAfterSeconds,
    );
  }
  if (status < 400) {
    return result(
      "BAD_REDIRECT",
      `${answered} without a usable Location; point the file at a URL that answers directly, then resume the job`,
      status,
      retryAfterSeconds,
    );
  }
  if (status === 416) {
    return result(
      "RANGE_NOT_SATISFIABLE",
      `${answered} when resuming, so the remote file is shorter than the part already transferred (it probably changed); resume the job to try again, or cancel it`,
      416,
      retryAfterSeconds,
    );
  }

  const code = `HTTP_${status}`;
  const transient = status >= 500 || status === 408 || status === 429;
  let todo: string;
  if (transient) {
    const wait = retryAfterSeconds !== null && retryAfterSeconds > 0 ? ` (the server asked to wait ${retryAfterSeconds} s)` : "";
    todo = `haul retries it after the job's retry delay${wait}; if it keeps failing the job goes to ERROR after its no-progress timeout`;
  } else if (status === 401 || status === 407) {
    todo = `the ${status === 407 ? "proxy" : "server"} wants credentials: make the file reachable without them (or fix the URL), then resume the job`;
  } else if (status === 403) {
    todo = "check that the URL is right and that the server allows access, then resume the job";
  } else if (status === 404 || status === 410) {
    todo = "fix the file's URL, then resume the job (or complete it to keep the files already transferred)";
  } else {
    todo = "fix the URL or the server, then resume the job";
  }
  return {
    transient,
    context: "REMOTE_FILE",
    code,
    httpStatus: status,
    message: `${answered}; ${todo}`,
    retryAfterSeconds,
  };
}

function classifyLocal(f: Extract<Failure, { kind: "local" }>): Classification {
  const code = text(f.code);
  const path = typeof f.path === "string" && f.path !== "" ? ` on ${quote(f.path)}` : "";
  const detail = f.message ? ` (${clip(text(f.message))})` : "";
  const cause = `${code || "unknown error"}${path}${detail}`;
  if (PERMISSION_CODES.has(code)) {
    return result(
      "LOCAL_PERMISSION_DENIED",
      `the service may not write the local file: ${cause}; fix the directory's permissions or choose another local path, then resume the job`,
    );
  }
  if (DISK_FULL_CODES.has(code)) {
    return result("DISK_FULL", `the disk is full: ${cause}; free some space, then resume the job`);
  }
  return result("LOCAL_FILE_ERROR", `the local file failed: ${cause}; fix the local path, then resume the job`);
}

/** A classification whose transient flag and context come from the table. */
function result(code: string, message: string, httpStatus: number | null = null, retryAfterSeconds: number | null = null): Classification {
  const info = errorCodeInfo(code) ?? ERROR_CODE_TABLE.UNKNOWN!;
  return { transient: info.transient, context: info.context, code, httpStatus, message, retryAfterSeconds };
}

// ---------------------------------------------------------------------------
// Retry-After (RFC 9110 §10.2.3): delta-seconds or an HTTP-date

const DAY_NAMES = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const MON = "(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)";
const TIME = "(\\d{2}):(\\d{2}):(\\d{2})";
// Sun, 06 Nov 1994 08:49:37 GMT
const IMF_FIXDATE = new RegExp(`^(?:${DAY_NAMES.join("|")}), (\\d{2}) ${MON} (\\d{4}) ${TIME} (?:GMT|UTC)$`, "i");
// Sunday, 06-Nov-94 08:49:37 GMT
const RFC850_DATE = new RegExp(`^(?:${LONG_DAY_NAMES.join("|")}), (\\d{2})-${MON}-(\\d{2}) ${TIME} (?:GMT|UTC)$`, "i");
// Sun Nov  6 08:49:37 1994
const ASCTIME_DATE = new RegExp(`^(?:${DAY_NAMES.join("|")}) ${MON} ([ \\d]\\d) ${TIME} (\\d{4})$`, "i");

/**
 * Seconds to wait from a Retry-After value, relative to `now`: delta-seconds
 * as is, an HTTP-date as the (rounded-up) time until then, 0 for a date in
 * the past; clamped to [0, 7 days]. null when absent or unparseable (Date.parse
 * is not used: it accepts strings like "12" as dates).
 */
export function parseRetryAfter(value: string | null | undefined, now: Date): number | null {
  if (typeof value !== "string") return null;
  const v = value.trim();
  if (v === "") return null;
  if (/^\d+$/.test(v)) return clampRetryAfter(Number(v));
  const at = parseHttpDate(v, now);
  const nowMs = now.getTime();
  if (at === null || !Number.isFinite(nowMs)) return null;
  return clampRetryAfter(Math.ceil((at - nowMs) / 1000));
}

function clampRetryAfter(seconds: number): number {
  if (Number.isNaN(seconds)) return 0;
  return Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(0, seconds));
}

/** An HTTP-date (any of the three RFC 9110 forms) in epoch ms, or null. */
function parseHttpDate(v: string, now: Date): number | null {
  let m = IMF_FIXDATE.exec(v);
  if (m) return utc(m[3], m[2], m[1], m[4], m[5], m[6]);
  m = ASCTIME_DATE.exec(v);
  if (m) return utc(m[6], m[1], m[2], m[3], m[4], m[5]);
  m = RFC850_DATE.exec(v);
  if (m) {
    // Two-digit year: a year more than 50 years in the future means the most recent past year with those digits (RFC 9110 §5.6.7).
    const yy = Number(m[3]);
    const nowYear = Number.isFinite(now.getTime()) ? now.getUTCFullYear() : 2000;
    let year = Math.floor(nowYear / 100) * 100 + yy;
    if (year > nowYear + 50) year -= 100;
    return utc(String(year), m[2], m[1], m[4], m[5], m[6]);
  }
  return null;
}

function utc(
  yearS: string | undefined,
  monS: string | undefined,
  dayS: string | undefined,
  hS: string | undefined,
  miS: string | undefined,
  sS: string | undefined,
): number | null {
  const year = Number(yearS);
  const month = MONTHS.indexOf((monS ?? "").toLowerCase());
  const day = Number((dayS ?? "").trim());
  const h = Number(hS);
  const mi = Number(miS);
  const s = Number(sS);
  if (month < 0 || !(day >= 1 && day <= 31) || h > 23 || mi > 59 || s > 60) return null;
  const d = new Date(0);
  d.setUTCFullYear(year, month, day); // not Date.UTC: it maps years 0-99 to 1900-1999
  d.setUTCHours(h, mi, Math.min(s, 59)); // a leap second counts as :59
  if (d.getUTCDate() !== day || d.getUTCMonth() !== month) return null; // 30 Feb and the like
  const ms = d.getTime();
  return Number.isFinite(ms) ? ms : null;
}

// ---------------------------------------------------------------------------
// toErrorInfo / failureFromError

/** The state machine's error info for a classification (TRANSIENT_FAILURE / FATAL_FAILURE). */
export function toErrorInfo(c: Classification, fileId: string | null): JobErrorInfo {
  return { context: c.context, code: c.code, message: c.message, fileId, httpStatus: c.httpStatus };
}

/**
 * Maps a thrown error to a Failure. Looks at `err`, then its `cause` chain
 * and AggregateError `errors` (undici wraps the socket error as
 * `TypeError("fetch failed", { cause })`; happy-eyeballs connects raise an
 * AggregateError), and takes the first code it recognises:
 * - an fs error (errno code with a `path`, or a code only the file system
 *   raises such as ENOSPC) -> local, whatever `where` says: a pipeline from
 *   the response into the file fails with the file's error;
 * - a known network code -> network (where "network"); any errno code ->
 *   local (where "local");
 * - a DOMException TimeoutError (AbortSignal.timeout) -> network ETIMEDOUT.
 * Anything else -> unknown, quoting the error's message and code.
 */
export function failureFromError(err: unknown, where: "network" | "local"): Failure {
  const chain = errorChain(err);
  for (const e of chain) {
    const code = typeof e.code === "string" ? e.code : undefined;
    const message = messageOf(e);
    if (code !== undefined && ERRNO_CODE.test(code)) {
      const path = typeof e.path === "string" ? e.path : undefined;
      if (where === "local" || path !== undefined || LOCAL_ONLY_CODES.has(code)) {
        const f: Extract<Failure, { kind: "local" }> = { kind: "local", code };
        if (path !== undefined) f.path = path;
        if (message !== undefined) f.message = message;
        return f;
      }
    }
    if (where === "network" && code !== undefined && networkCode(code) !== undefined) {
      return networkFailure(code, message);
    }
    if (where === "network" && e.name === "TimeoutError") {
      return networkFailure("ETIMEDOUT", message);
    }
  }
  if (chain.length === 0) return { kind: "unknown", message: `a non-error value was thrown: ${describe(err)}` };
  const messages = chain.map(messageOf).filter((m): m is string => m !== undefined);
  const codes = chain.map((e) => e.code).filter((c): c is string => typeof c === "string");
  const parts = [...new Set(messages)].slice(0, 3);
  if (codes.length > 0) parts.push(`code ${codes.join(", ")}`);
  const name = typeof chain[0]?.name === "string" ? chain[0].name : "error";
  return { kind: "unknown", message: clip(parts.length > 0 ? parts.join(": ") : `${name} without a message`) };
}

interface ErrorLike {
  code?: unknown;
  path?: unknown;
  name?: unknown;
  message?: unknown;
  cause?: unknown;
  errors?: unknown;
}

/** err, its causes and aggregated errors, breadth-first, at most 16 entries, cycles ignored. */
function errorChain(err: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length > 0 && out.length < 16) {
    const e = queue.shift();
    if (typeof e !== "object" || e === null || seen.has(e)) continue;
    seen.add(e);
    const el = e as ErrorLike;
    out.push(el);
    if (el.cause !== undefined) queue.push(el.cause);
    if (Array.isArray(el.errors)) queue.push(...(el.errors as unknown[]).slice(0, 8));
  }
  return out;
}

function messageOf(e: ErrorLike): string | undefined {
  return typeof e.message === "string" && e.message !== "" ? clip(e.message) : undefined;
}

function networkFailure(code: string, message: string | undefined): Failure {
  return message === undefined ? { kind: "network", code } : { kind: "network", code, message };
}

// ---------------------------------------------------------------------------
// Text hygiene

/**
 * A URL-like token in free text: scheme://... or //... up to whitespace, a
 * quote, or the … that marks a cut (so a second pass changes nothing).
 */
const URL_TOKEN = /(?:\b[a-z][a-z0-9+.-]*:)?\/\/[^\s"'<>…]*/gi;

/**
 * A URL safe to show: no user:password@ (everything up to the last @ of the
 * authority, as WHATWG URL parsing splits it) and a query string cut to 100
 * characters. Works on strings that are not valid URLs too.
 */
export function sanitizeUrl(url: string): string {
  let out = url.replace(/^((?:[a-z][a-z0-9+.-]*:)?\/\/)[^/?#\\]*@/i, "$1");
  const q = out.indexOf("?");
  if (q >= 0) {
    const hash = out.indexOf("#", q);
    const end = hash >= 0 ? hash : out.length;
    const query = out.slice(q + 1, end);
    if (query.length > MAX_QUERY_CHARS) out = `${out.slice(0, q + 1)}${query.slice(0, MAX_QUERY_CHARS)}…${out.slice(end)}`;
  }
  return out;
}

/** Applies sanitizeUrl to every URL-like token in a message; trailing punctuation is prose, not URL. */
function sanitizeText(message: string): string {
  return message.replace(URL_TOKEN, (token) => {
    const core = token.replace(/[.,;:!?)\]]+$/, "");
    return sanitizeUrl(core) + token.slice(core.length);
  });
}

/** Free text on one line, credentials stripped before cutting (a cut must not split a user:password@ out of reach). */
function clip(s: string, max = MAX_FREE_TEXT_CHARS): string {
  const one = sanitizeText(s.replace(/\s+/g, " ").trim());
  return one.length > max ? `${one.slice(0, max)}…` : one;
}

function text(v: unknown): string {
  return typeof v === "string" ? v : v === undefined || v === null ? "" : String(v);
}

function quote(s: string): string {
  return `"${clip(s, 200)}"`;
}

function num(n: unknown): string {
  return typeof n === "number" && Number.isFinite(n) ? String(n) : "an unknown number of";
}

function finiteOr<T>(n: unknown, fallback: T): number | T {
  return typeof n === "number" && Number.isFinite(n) ? n : fallback;
}

function describe(v: unknown): string {
  if (typeof v === "string") return quote(v);
  if (typeof v === "number" || typeof v === "boolean" || v === null || v === undefined) return String(v);
  try {
    return clip(JSON.stringify(v) ?? String(v), 200);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

const REASONS: Readonly<Record<number, string>> = {
  100: "Continue",
  101: "Switching Protocols",
  103: "Early Hints",
  200: "OK",
  201: "Created",
  202: "Accepted",
  203: "Non-Authoritative Information",
  204: "No Content",
  205: "Reset Content",
  206: "Partial Content",
  300: "Multiple Choices",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  305: "Use Proxy",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  411: "Length Required",
  412: "Precondition Failed",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  417: "Expectation Failed",
  421: "Misdirected Request",
  422: "Unprocessable Content",
  425: "Too Early",
  426: "Upgrade Required",
  428: "Precondition Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  451: "Unavailable For Legal Reasons",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
  507: "Insufficient Storage",
  508: "Loop Detected",
  511: "Network Authentication Required",
};

function reason(status: number): string {
  const r = REASONS[status];
  return r === undefined ? "" : ` ${r}`;
}

function deepFreeze<T extends Record<string, object>>(o: T): Readonly<T> {
  for (const v of Object.values(o)) Object.freeze(v);
  return Object.freeze(o);
}
