// Input validation for the commands: pure functions (no I/O) that either return the normalised value
// or throw a DomainError with code BAD_USER_INPUT and a message that says what to fix.
// Limits are BITS's: display name 256 chars, description 1,024, remote URL 2,200.
import { DomainError } from "./errors.js";
import { DEFAULTS, clampRetryDelay } from "./job-state.js";

export interface FileSpec {
  remoteUrl: string;
  localPath: string;
  /** expected SHA-256 of the content, hex */
  sha256?: string | null;
}

export interface HttpHeader {
  name: string;
  value: string;
}

export interface Credentials {
  username: string;
  password: string;
}

const MAX_LOCAL_PATH = 1024;
const MAX_SEGMENT = 255;

function bad(message: string): never {
  throw new DomainError("BAD_USER_INPUT", message);
}

/**
 * Text must be well-formed Unicode: a lone UTF-16 surrogate would be stored altered (as U+FFFD),
 * so two different inputs could become the same value, or refused by the database.
 */
export function assertWellFormed(v: string, field: string): void {
  if (!(v as string & { isWellFormed(): boolean }).isWellFormed()) bad(`${field} is not well-formed Unicode (a lone surrogate)`);
}

export function validateDisplayName(v: string): string {
  assertWellFormed(v, "displayName");
  if (v.trim() === "") bad("displayName must not be empty");
  if ([...v].length > DEFAULTS.displayNameMaxLength) bad(`displayName is longer than ${DEFAULTS.displayNameMaxLength} characters`);
  if (v.includes("\0")) bad("displayName must not contain NUL characters");
  return v;
}

export function validateDescription(v: string): string {
  assertWellFormed(v, "description");
  if ([...v].length > DEFAULTS.descriptionMaxLength) bad(`description is longer than ${DEFAULTS.descriptionMaxLength} characters`);
  if (v.includes("\0")) bad("description must not contain NUL characters");
  return v;
}

/** http and https only, at most 2,200 characters, no credentials in the URL. */
export function validateRemoteUrl(v: string, field = "remoteUrl"): string {
  assertWellFormed(v, field);
  if (v.length > DEFAULTS.remoteUrlMaxLength) bad(`${field} is longer than ${DEFAULTS.remoteUrlMaxLength} characters`);
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    bad(`${field} is not an absolute URL: ${JSON.stringify(v.slice(0, 100))}`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") bad(`${field} must use http or https, not ${u.protocol.replace(/:$/, "")}`);
  if (u.hostname === "") bad(`${field} has no host`);
  if (u.username !== "" || u.password !== "") bad(`${field} must not carry credentials; set them on the job instead`);
  // Normalisation (percent-encoding) can make a URL longer than it was sent: check what is stored.
  if (u.href.length > DEFAULTS.remoteUrlMaxLength) bad(`${field} is longer than ${DEFAULTS.remoteUrlMaxLength} characters once normalised`);
  return u.href;
}

/**
 * A destination relative to the storage root: no absolute path, no `..`, no NUL, no empty or `.`
 * segment, no trailing slash. Backslashes are refused rather than guessed at. Returns the path with
 * `/` separators.
 */
export function validateLocalPath(v: string, field = "localPath"): string {
  if (v === "") bad(`${field} must not be empty`);
  assertWellFormed(v, field);
  if (v.includes("\0")) bad(`${field} must not contain NUL characters`);
  if (v.includes("\\")) bad(`${field} must use / as the separator`);
  if (v.length > MAX_LOCAL_PATH) bad(`${field} is longer than ${MAX_LOCAL_PATH} characters`);
  if (v.startsWith("/") || /^[A-Za-z]:/.test(v)) bad(`${field} must be relative to the storage root, not absolute: ${JSON.stringify(v)}`);
  const segments = v.split("/");
  for (const s of segments) {
    if (s === "..") bad(`${field} must stay inside the storage root (no ".." segments): ${JSON.stringify(v)}`);
    if (s === "" || s === ".") bad(`${field} has an empty or "." segment: ${JSON.stringify(v)}`);
    if (Buffer.byteLength(s) > MAX_SEGMENT) bad(`${field} has a name longer than ${MAX_SEGMENT} bytes`);
    if (/[\u0000-\u001f]/.test(s)) bad(`${field} must not contain control characters`);
  }
  return segments.join("/");
}

export function validateFiles(files: readonly FileSpec[], existingLocalPaths: Iterable<string> = []): FileSpec[] {
  if (files.length === 0) bad("files must hold at least one file");
  const seen = new Set(existingLocalPaths);
  return files.map((f, i) => {
    const remoteUrl = validateRemoteUrl(f.remoteUrl, `files[${i}].remoteUrl`);
    const localPath = validateLocalPath(f.localPath, `files[${i}].localPath`);
    if (seen.has(localPath)) bad(`files[${i}].localPath ${JSON.stringify(localPath)} is already a destination in this job`);
    seen.add(localPath);
    const sha256 = f.sha256 == null ? null : validateSha256(f.sha256, `files[${i}].sha256`);
    return { remoteUrl, localPath, sha256 };
  });
}

/** Seconds: whole, not negative. Retry delays below the floor are clamped up to it, as BITS does. */
export function validateRetryDelay(v: number, floor: number): number {
  if (!Number.isInteger(v) || v < 0) bad("minimumRetryDelay must be a whole number of seconds, 0 or more");
  return clampRetryDelay(v, floor);
}

export function validateSeconds(v: number, field: string): number {
  if (!Number.isInteger(v) || v < 0) bad(`${field} must be a whole number of seconds, 0 or more`);
  return v;
}

export function validateSha256(v: string, field = "sha256"): string {
  if (!/^[0-9a-fA-F]{64}$/.test(v)) bad(`${field} must be 64 hexadecimal characters (a SHA-256 digest)`);
  return v.toLowerCase();
}

/** Headers the transfer itself manages; a job may not set them. */
const RESERVED_HEADERS = new Set(["host", "content-length", "range", "if-range", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer", "expect"]);

export function validateHeaders(headers: readonly HttpHeader[]): HttpHeader[] {
  if (headers.length > 50) bad("at most 50 custom headers per job");
  return headers.map((h, i) => {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/.test(h.name)) bad(`httpHeaders[${i}].name is not a valid header name`);
    if (RESERVED_HEADERS.has(h.name.toLowerCase())) bad(`httpHeaders[${i}]: ${h.name} is managed by haul and cannot be set`);
    if (/[\r\n\0]/.test(h.value) || h.value.length > 8192) bad(`httpHeaders[${i}].value must be at most 8,192 characters with no line breaks`);
    assertWellFormed(h.value, `httpHeaders[${i}].value`);
    return { name: h.name, value: h.value };
  });
}

export function validateCredentials(c: Credentials): Credentials {
  if (c.username.length === 0 || c.username.length > 256 || c.username.includes(":") || /[\r\n\0]/.test(c.username)) {
    bad("credentials.username must be 1 to 256 characters, without ':' or line breaks");
  }
  if (c.password.length > 1024 || /[\r\n\0]/.test(c.password)) bad("credentials.password must be at most 1,024 characters, without line breaks");
  assertWellFormed(c.username, "credentials.username");
  assertWellFormed(c.password, "credentials.password");
  return { username: c.username, password: c.password };
}

/** bytes per second: null clears the limit; otherwise at least 1 KiB/s. */
export function validateRate(v: bigint | null, field = "maxBytesPerSecond"): bigint | null {
  if (v === null) return null;
  if (v < 1024n) bad(`${field} must be at least 1024 bytes per second (or null for no limit)`);
  if (v > 1n << 50n) bad(`${field} is too large`);
  return v;
}
