// Starts a real haul server (real Postgres, port 0 on 127.0.0.1) inside the test process.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openDatabase, type Database } from "../../src/store/db.js";
import { buildApp, type App } from "../../src/server/app.js";
import type { WorkerOptions } from "../../src/worker/worker.js";
import { createLogger } from "../../src/logger.js";
import { createTestDatabase, type TestDatabase } from "./db.js";
import { authHeader, ensureTestTokens, setDefaultToken } from "./auth.js";

export interface TestServer {
  url: string;
  graphqlUrl: string;
  wsUrl: string;
  app: App;
  db: Database;
  storageRoot: string;
  /** <storage root>/local: where the default test user's files go */
  filesRoot: string;
  /** a USER token for "local" (the default for the helpers) and an ADMIN token for "admin" */
  userToken: string;
  adminToken: string;
  close(): Promise<void>;
}

/** Loopback: where every test origin lives (haul refuses it unless allowed). */
export const TEST_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"];

/** Worker settings for tests: fast sweeps, short leases and stalls. */
export const TEST_WORKER: WorkerOptions = {
  maxTransfers: 8,
  leaseSeconds: 5,
  maxBytesPerSecond: null,
  stallSeconds: 2,
  inactivitySeconds: 7_776_000,
  sweepSeconds: 1,
  progressIntervalMs: 500,
  maxRedirects: 10,
};

export async function startServer(
  opts: {
    database?: TestDatabase;
    onQuery?: (sql: string) => void;
    /** true: TEST_WORKER; an object: those settings over TEST_WORKER; default: no worker (API only) */
    worker?: boolean | Partial<WorkerOptions>;
    retryDelayFloorSeconds?: number;
    storageRoot?: string;
    maxJobsPerUser?: number;
    maxFilesPerJob?: number;
    allowedNetworks?: string[];
  } = {},
): Promise<TestServer & { database: TestDatabase }> {
  const database = opts.database ?? (await createTestDatabase());
  const storageRoot = opts.storageRoot ?? fs.mkdtempSync(path.join(os.tmpdir(), "haul-files-"));
  const db = await openDatabase({ databaseUrl: database.url, dataDir: "", migrate: false, onQuery: opts.onQuery });
  const app = buildApp({
    config: {
      host: "127.0.0.1",
      port: 0,
      storageRoot,
      retryDelayFloorSeconds: opts.retryDelayFloorSeconds ?? 5,
      maxFilesPerJob: opts.maxFilesPerJob ?? 200,
      maxJobsPerUser: opts.maxJobsPerUser ?? 60,
      graphiql: true,
      allowedNetworks: opts.allowedNetworks ?? TEST_ALLOWED_NETWORKS,
    },
    db,
    worker: opts.worker ? { ...TEST_WORKER, ...(opts.worker === true ? {} : opts.worker) } : false,
    logger: createLogger(process.env.HAUL_TEST_LOG ?? "silent"),
  });
  const url = await app.start();
  // Tokens live in the database: servers sharing one database share them.
  const { userToken, adminToken } = await ensureTestTokens(database.url);
  setDefaultToken(url, userToken);
  return {
    url,
    graphqlUrl: `${url}/graphql`,
    wsUrl: `${url.replace(/^http/, "ws")}/graphql`,
    app,
    db,
    storageRoot,
    filesRoot: path.join(storageRoot, "local"),
    userToken,
    adminToken,
    database,
    async close() {
      await app.stop();
      await db.close();
      if (!opts.storageRoot) fs.rmSync(storageRoot, { recursive: true, force: true });
      if (!opts.database) await database.drop();
    },
  };
}

export interface GqlResult<T = any> {
  data?: T;
  errors?: { message: string; path?: string[]; extensions?: { code?: string; [k: string]: unknown } }[];
}

/** `token`: undefined = the server's default test token (USER "local"); null = none. */
export async function gql<T = any>(url: string, query: string, variables?: Record<string, unknown>, token?: string | null): Promise<GqlResult<T>> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/graphql-response+json, application/json", ...authHeader(url, token) },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as GqlResult<T>;
}

/** The data of a successful call; throws with the errors otherwise. */
export async function ok<T = any>(url: string, query: string, variables?: Record<string, unknown>, token?: string | null): Promise<T> {
  const r = await gql<T>(url, query, variables, token);
  if (r.errors?.length || !r.data) throw new Error(`GraphQL errors: ${JSON.stringify(r.errors)}`);
  return r.data;
}

export function codeOf(r: GqlResult): string | undefined {
  return r.errors?.[0]?.extensions?.code as string | undefined;
}
