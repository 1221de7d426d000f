// Test databases on the real Postgres: scripts/test.mjs migrates one template database per run
// (HAUL_TEST_TEMPLATE) and every test file clones it (CREATE DATABASE ... TEMPLATE, ~100 ms) and
// drops its clone at the end. Run a file on its own and it migrates a database of its own.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { migratePostgres } from "../../src/store/db.js";

export const ADMIN_URL = process.env.HAUL_TEST_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

export function urlFor(dbName: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${dbName}`;
  return u.toString();
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export interface TestDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `haul_t_${process.pid}_${randomBytes(4).toString("hex")}`;
  const template = process.env.HAUL_TEST_TEMPLATE;
  await admin(async (c) => {
    if (template) {
      // CREATE DATABASE ... TEMPLATE fails if another session is connected to the template; retry briefly.
      for (let i = 0; ; i++) {
        try {
          await c.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
          break;
        } catch (err) {
          if (i > 50 || !/being accessed by other users/.test(String(err))) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    } else {
      await c.query(`CREATE DATABASE "${name}"`);
    }
  });
  const url = urlFor(name);
  if (!template) await migratePostgres(url);
  return {
    url,
    name,
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => {}),
  };
}
