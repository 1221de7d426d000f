// Starts a real haul server (real Postgres, port 0 on 127.0.0.1) inside the test process.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openDatabase, type Database } from "../../src/store/db.js";
import { buildApp, type App } from "../../src/server/app.js";
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

export async function startServer(opts: { database?: TestDatabase; onQuery?: (sql: string) => void } = {}): Promise<TestServer & { database: TestDatabase }> {
  const database = opts.database ?? (await createTestDatabase());
  const storageRoot = fs.mkdtempSync(path.join(os.tmpdir(), "haul-files-"));
  const db = await openDatabase({ databaseUrl: database.url, dataDir: "", migrate: false, onQuery: opts.onQuery });
  const app = buildApp({
    config: { host: "127.0.0.1", port: 0, storageRoot, retryDelayFloorSeconds: 5, maxFilesPerJob: 200, graphiql: true },
    db,
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
      fs.rmSync(storageRoot, { recursive: true, force: true });
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
