// Parsers for option values (commander argParsers): a bad value is a usage error (exit 2) that
// names the option's accepted forms. The enum lists are checked against the schema by tsc.
import { InvalidArgumentError, Option, type Command } from "commander";
import { CliError } from "./client.js";
import type { ResultOf, VariablesOf } from "./graphql.js";
import type { JobSummaryFields, ViewerQuery, UpdateJobMutation } from "./documents.js";

export type JobState = ResultOf<typeof JobSummaryFields>["state"];
export type JobPriority = ResultOf<typeof JobSummaryFields>["priority"];
export type Role = ResultOf<typeof ViewerQuery>["viewer"]["role"];
export type UpdateJobInput = VariablesOf<typeof UpdateJobMutation>["input"];

// `satisfies Record<X, true>`: every enum value of the schema, and nothing else.
const STATES = {
  QUEUED: true,
  CONNECTING: true,
  TRANSFERRING: true,
  SUSPENDED: true,
  ERROR: true,
  TRANSIENT_ERROR: true,
  TRANSFERRED: true,
  ACKNOWLEDGED: true,
  CANCELLED: true,
} as const satisfies Record<JobState, true>;
const PRIORITIES = { FOREGROUND: true, HIGH: true, NORMAL: true, LOW: true } as const satisfies Record<JobPriority, true>;
const ROLES = { USER: true, ADMIN: true } as const satisfies Record<Role, true>;

/** A usage error found after parsing (exit 2, like commander's own). */
export function usageError(message: string): CliError {
  return new CliError(message, undefined, 2);
}

export const JOB_STATES = Object.keys(STATES) as JobState[];

function oneOf<T extends string>(table: Record<T, true>, what: string) {
  return (value: string): T => {
    const v = value.trim().toUpperCase().replace(/-/g, "_");
    if (!(v in table)) throw new InvalidArgumentError(`not a ${what}: ${value} (one of ${Object.keys(table).join(", ")})`);
    return v as T;
  };
}

export const parsePriority = oneOf(PRIORITIES, "priority");
export const parseRole = oneOf(ROLES, "role");
const parseOneState = oneOf(STATES, "job state");

/** --state S, repeatable, each a comma-separated list; accumulates. */
export function parseStates(value: string, previous: JobState[] | undefined): JobState[] {
  const states = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .map(parseOneState);
  return [...(previous ?? []), ...states];
}

/** A positive whole number (e.g. --first). */
export function parsePositiveInt(value: string): number {
  if (!/^\d+$/.test(value.trim()) || Number(value) < 1 || Number(value) > 2 ** 31 - 1) {
    throw new InvalidArgumentError(`not a positive whole number: ${value}`);
  }
  return Number(value);
}

/** Seconds: "600", "90s", "10m", "2h", "14d", "1h30m". */
export function parseSeconds(value: string): number {
  const v = value.trim().toLowerCase();
  if (/^\d+$/.test(v)) return checkInt(Number(v), value);
  const m = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(v);
  if (!m || v === "") throw new InvalidArgumentError(`not a duration: ${value} (seconds, or e.g. 90s, 10m, 2h, 14d)`);
  const [d, h, min, s] = m.slice(1).map((x) => Number(x ?? 0)) as [number, number, number, number];
  return checkInt(d * 86400 + h * 3600 + min * 60 + s, value);
}

function checkInt(n: number, value: string): number {
  if (n > 2 ** 31 - 1) throw new InvalidArgumentError(`too large: ${value}`);
  return n;
}

/** Bytes (per second): "1048576", "512k", "10M", "1G" (binary multiples). Returned as a decimal string (BigInt). */
export function parseBytes(value: string): string {
  const m = /^(\d+)\s*([kmgt]?)(?:i?b)?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`not a byte count: ${value} (e.g. 1048576, 512k, 10M)`);
  const mult = { "": 1n, k: 1024n, m: 1024n ** 2n, g: 1024n ** 3n, t: 1024n ** 4n }[m[2]!.toLowerCase() as "" | "k" | "m" | "g" | "t"];
  return (BigInt(m[1]!) * mult).toString();
}

/** --header "Name: value", repeatable; accumulates. */
export function parseHeader(value: string, previous: { name: string; value: string }[] | undefined): { name: string; value: string }[] {
  const i = value.indexOf(":");
  if (i <= 0) throw new InvalidArgumentError(`not a header: ${JSON.stringify(value)} (use "Name: value")`);
  return [...(previous ?? []), { name: value.slice(0, i).trim(), value: value.slice(i + 1).trim() }];
}

/** --credentials user:password */
export function parseCredentials(value: string): { username: string; password: string } {
  const i = value.indexOf(":");
  if (i <= 0) throw new InvalidArgumentError("credentials must be user:password");
  return { username: value.slice(0, i), password: value.slice(i + 1) };
}

/** A 64-digit hex SHA-256. */
export function parseSha256(value: string): string {
  const v = value.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(v)) throw new InvalidArgumentError(`not a SHA-256 (64 hex digits): ${value}`);
  return v;
}

// ---- job properties, shared by create, set and transfer -------------------------------------------

export interface JobPropertyOptions {
  priority?: JobPriority;
  description?: string;
  retryDelay?: number;
  noProgressTimeout?: number;
  maxDownloadTime?: number;
  maxBytesPerSecond?: string;
  header?: { name: string; value: string }[];
  clearHeaders?: boolean;
  credentials?: { username: string; password: string };
  clearCredentials?: boolean;
}

/** Adds the options that set job properties (bitsadmin /set*, Set-BitsTransfer). */
export function addJobPropertyOptions(cmd: Command, opts: { priorityDefault?: JobPriority; forUpdate?: boolean } = {}): Command {
  const priority = new Option("--priority <priority>", "FOREGROUND, HIGH, NORMAL or LOW").argParser(parsePriority);
  if (opts.priorityDefault) priority.default(opts.priorityDefault);
  // Not commander's "--no-<flag>" negation: BITS's NoProgressTimeout, a value.
  const noProgressTimeout = new Option(
    "--no-progress-timeout <duration>",
    "how long without progress before a transient error becomes fatal (0: at once)",
  ).argParser(parseSeconds);
  noProgressTimeout.negate = false;
  cmd
    .addOption(priority)
    .option("--description <text>", "description (at most 1,024 characters)")
    .option("--retry-delay <duration>", "minimum retry delay after a transient error (seconds, or 90s, 10m, 2h)", parseSeconds)
    .addOption(noProgressTimeout)
    .option("--max-download-time <duration>", "how long the job may spend transferring before it fails", parseSeconds)
    .option(
      "--max-bytes-per-second <bytes>",
      `bandwidth cap for the job (e.g. 512k, 10M; at least 1024${opts.forUpdate ? "; 0 removes it" : ""})`,
      parseBytes,
    )
    .option("--header <header>", 'a custom request header "Name: value" (repeatable; replaces the job\'s headers)', parseHeader)
    .option("--credentials <user:password>", "HTTP basic-auth credentials for the remote server", parseCredentials);
  if (opts.forUpdate) {
    cmd.option("--clear-headers", "remove the custom request headers").option("--clear-credentials", "remove the credentials");
  }
  return cmd;
}

/** The property fields of CreateJobInput / UpdateJobInput from those options (only the ones given). */
export function jobPropertiesInput(o: JobPropertyOptions): UpdateJobInput {
  const input: UpdateJobInput = {};
  if (o.priority !== undefined) input.priority = o.priority;
  if (o.description !== undefined) input.description = o.description;
  if (o.retryDelay !== undefined) input.minimumRetryDelay = o.retryDelay;
  if (o.noProgressTimeout !== undefined) input.noProgressTimeout = o.noProgressTimeout;
  if (o.maxDownloadTime !== undefined) input.maximumDownloadTime = o.maxDownloadTime;
  if (o.maxBytesPerSecond !== undefined) input.maxBytesPerSecond = o.maxBytesPerSecond;
  if (o.header !== undefined) input.httpHeaders = o.header;
  if (o.clearHeaders) {
    if (o.header !== undefined) throw usageError("--header and --clear-headers exclude each other");
    input.httpHeaders = [];
  }
  if (o.credentials !== undefined) input.credentials = o.credentials;
  if (o.clearCredentials) {
    if (o.credentials !== undefined) throw usageError("--credentials and --clear-credentials exclude each other");
    input.clearCredentials = true;
  }
  return input;
}
