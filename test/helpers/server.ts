// Starts a real haul server (real Postgres, port 0 on 127.0.0.1) inside the test process.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openDatabase, type Database } from "../../src/store/db.js";
import { buildApp, type App } from "../../src/server/app.js";
import type { WorkerOptions } from "../../src/worker/worker.js";
import { createLogger } from "../../src/logger.js";
import { createTestDatabase, type TestDatabase } from "./db.js";

export interface TestServer {
  url: string;
  graphqlUrl: string;
  wsUrl: string;
  app: App;
  db: Database;
  storageRoot: string;
  close(): Promise<void>;
}

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
  } = {},
): Promise<TestServer & { database: TestDatabase }> {
  const database = opts.database ?? (await createTestDatabase());
  const storageRoot = opts.storageRoot ?? fs.mkdtempSync(path.join(os.tmpdir(), "haul-files-"));
  const db = await openDatabase({ databaseUrl: database.url, dataDir: "", migrate: false, onQuery: opts.onQuery });
  const app = buildApp({
    config: { host: "127.0.0.1", port: 0, storageRoot, retryDelayFloorSeconds: opts.retryDelayFloorSeconds ?? 5, maxFilesPerJob: 200, graphiql: true },
    db,
    worker: opts.worker ? { ...TEST_WORKER, ...(opts.worker === true ? {} : opts.worker) } : false,
    logger: createLogger(process.env.HAUL_TEST_LOG ?? "silent"),
  });
  const url = await app.start();
  return {
    url,
    graphqlUrl: `${url}/graphql`,
    wsUrl: `${url.replace(/^http/, "ws")}/graphql`,
    app,
    db,
    storageRoot,
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

export async function gql<T = any>(url: string, query: string, variables?: Record<string, unknown>): Promise<GqlResult<T>> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/graphql-response+json, application/json" },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as GqlResult<T>;
}

/** The data of a successful call; throws with the errors otherwise. */
export async function ok<T = any>(url: string, query: string, variables?: Record<string, unknown>): Promise<T> {
  const r = await gql<T>(url, query, variables);
  if (r.errors?.length || !r.data) throw new Error(`GraphQL errors: ${JSON.stringify(r.errors)}`);
  return r.data;
}

export function codeOf(r: GqlResult): string | undefined {
  return r.errors?.[0]?.extensions?.code as string | undefined;
}
