// Configuration: the environment is read once, here, into a typed and validated object. A bad value
// stops start-up with a message that names the variable.
import path from "node:path";
import { DEFAULTS } from "./domain/job-state.js";

export interface Config {
  host: string;
  port: number;
  /** Real PostgreSQL when set; embedded PGlite in `dataDir` otherwise. */
  databaseUrl: string | null;
  dataDir: string;
  storageRoot: string;
  /** Clients cannot set a minimumRetryDelay below this (BITS clamps to 5 s). */
  retryDelayFloorSeconds: number;
  maxFilesPerJob: number;
  /** Postgres pool size (real Postgres only). */
  dbPoolSize: number;
  /** Recurring statements as named prepared statements (real Postgres only). */
  dbPreparedStatements: boolean;
  /** Apply pending migrations at start (always on for the embedded database). */
  migrateOnStart: boolean;
  /** GraphiQL in the browser at /graphql. */
  graphiql: boolean;
  logLevel: "debug" | "info" | "warn" | "error" | "silent";
  /** Run the transfer worker in this process (HAUL_WORKER=off: API only). */
  worker: boolean;
  maxTransfers: number;
  leaseSeconds: number;
  /** Global bandwidth cap in bytes/s (null: none). */
  maxBytesPerSecond: number | null;
  /** No byte received for this long: the attempt fails (transient). */
  stallSeconds: number;
  /** BITS JobInactivityTimeout: unfinished jobs untouched this long are cancelled. */
  inactivitySeconds: number;
  /** An ADMIN token to accept (user "admin"); unset: one is created at first start into <data dir>/admin-token. */
  adminToken: string | null;
  /** CIDRs haul may fetch from although they are loopback/private/link-local/...; default none. */
  allowedNetworks: string[];
  /** BITS MaxJobsPerUser: unfinished jobs per user (admins exempt). */
  maxJobsPerUser: number;
  /** Introspection for authenticated callers. */
  introspection: boolean;
}

export class ConfigError extends Error {
  constructor(readonly variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}

function int(env: Env, name: string, dflt: number, min: number, max: number): number {
  const raw = str(env, name);
  if (raw === undefined) return dflt;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `expected a whole number, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function bool(env: Env, name: string, dflt: boolean): boolean {
  const raw = str(env, name)?.toLowerCase();
  if (raw === undefined) return dflt;
  if (["1", "true", "yes", "on"].includes(raw)) return true;
  if (["0", "false", "no", "off"].includes(raw)) return false;
  throw new ConfigError(name, `expected true or false, got ${JSON.stringify(raw)}`);
}

export function loadConfig(env: Env = process.env, cwd = process.cwd()): Config {
  const host = str(env, "HOST") ?? "127.0.0.1";
  if (/\s/.test(host)) throw new ConfigError("HOST", `not a host name or address: ${JSON.stringify(host)}`);
  const port = int(env, "PORT", 4000, 0, 65535);

  const databaseUrl = str(env, "DATABASE_URL") ?? null;
  if (databaseUrl !== null) {
    let u: URL;
    try {
      u = new URL(databaseUrl);
    } catch {
      throw new ConfigError("DATABASE_URL", "not a URL; expected postgresql://user@host:port/database");
    }
    if (u.protocol !== "postgresql:" && u.protocol !== "postgres:") {
      throw new ConfigError("DATABASE_URL", `expected a postgresql:// URL, got ${u.protocol}//`);
    }
  }

  const dataDir = path.resolve(cwd, str(env, "HAUL_DATA_DIR") ?? ".haul");
  const storageRoot = path.resolve(cwd, str(env, "HAUL_STORAGE_ROOT") ?? path.join(dataDir, "files"));

  const logLevel = (str(env, "HAUL_LOG_LEVEL") ?? "info") as Config["logLevel"];
  if (!["debug", "info", "warn", "error", "silent"].includes(logLevel)) {
    throw new ConfigError("HAUL_LOG_LEVEL", `expected debug, info, warn, error or silent, got ${JSON.stringify(logLevel)}`);
  }

  return {
    host,
    port,
    databaseUrl,
    dataDir,
    storageRoot,
    retryDelayFloorSeconds: int(env, "HAUL_RETRY_DELAY_FLOOR", DEFAULTS.retryDelayFloorSeconds, 0, 86_400),
    maxFilesPerJob: int(env, "HAUL_MAX_FILES_PER_JOB", DEFAULTS.maxFilesPerJob, 1, 100_000),
    dbPoolSize: int(env, "HAUL_DB_POOL_SIZE", 10, 1, 1000),
    dbPreparedStatements: bool(env, "HAUL_DB_PREPARED_STATEMENTS", true),
    migrateOnStart: bool(env, "HAUL_MIGRATE_ON_START", true),
    graphiql: bool(env, "HAUL_GRAPHIQL", true),
    logLevel,
    worker: bool(env, "HAUL_WORKER", true),
    maxTransfers: int(env, "HAUL_MAX_TRANSFERS", 8, 1, 1000),
    leaseSeconds: int(env, "HAUL_LEASE_SECONDS", 30, 2, 3600),
    maxBytesPerSecond: int(env, "HAUL_MAX_BYTES_PER_SECOND", 0, 0, 2 ** 50) || null,
    stallSeconds: int(env, "HAUL_STALL_SECONDS", 60, 1, 86_400),
    inactivitySeconds: int(env, "HAUL_INACTIVITY_SECONDS", 7_776_000, 60, 2 ** 31 - 1),
    adminToken: adminToken(env),
    allowedNetworks: networks(env),
    maxJobsPerUser: int(env, "HAUL_MAX_JOBS_PER_USER", 60, 1, 1_000_000),
    introspection: bool(env, "HAUL_INTROSPECTION", true),
  };
}

function adminToken(env: Env): string | null {
  const t = str(env, "HAUL_ADMIN_TOKEN");
  if (t === undefined) return null;
  if (t.length < 32 || /\s/.test(t)) throw new ConfigError("HAUL_ADMIN_TOKEN", "must be at least 32 characters without spaces (e.g. `openssl rand -base64 32`)");
  return t;
}

function networks(env: Env): string[] {
  const raw = str(env, "HAUL_ALLOWED_NETWORKS");
  if (raw === undefined) return [];
  const list = raw.split(",").map((x) => x.trim()).filter(Boolean);
  for (const cidr of list) {
    const m = /^([0-9a-fA-F:.]+)(?:\/(\d{1,3}))?$/.exec(cidr);
    const ip = m?.[1] ?? "";
    const isV4 = /^\d{1,3}(\.\d{1,3}){3}$/.test(ip);
    const max = isV4 ? 32 : 128;
    if (!m || (!isV4 && !ip.includes(":")) || (m[2] !== undefined && Number(m[2]) > max)) {
      throw new ConfigError("HAUL_ALLOWED_NETWORKS", `not a CIDR: ${JSON.stringify(cidr)} (expected e.g. 127.0.0.0/8,::1/128)`);
    }
  }
  return list;
}
