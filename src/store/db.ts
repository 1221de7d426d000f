// Opens the database: real PostgreSQL through @prisma/adapter-pg when DATABASE_URL is set, otherwise
// embedded PGlite (Postgres compiled to WebAssembly, in-process) in the data directory through
// pglite-prisma-adapter. Same Prisma client, same migrations, same SQL on both.
import fs from "node:fs";
import path from "node:path";
import pg from "pg";
import { PGlite } from "@electric-sql/pglite";
import { PrismaPGlite } from "pglite-prisma-adapter";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "../generated/prisma/client.js";
import { applyMigrations, readMigrations } from "./migrations.js";
import type { Logger } from "../logger.js";

export type { PrismaClient };

export interface Database {
  kind: "postgres" | "pglite";
  prisma: PrismaClient;
  /**
   * A parameterised read straight through the driver (pg, or PGlite), bypassing Prisma's query
   * engine: for the hottest reads only (src/store/job-reads.ts), where Prisma's per-query CPU is
   * most of the cost. Rows come back as the driver parses them (snake_case, int8 as a string).
   */
  query<T = Record<string, unknown>>(sql: string, params: unknown[]): Promise<T[]>;
  /**
   * A transaction straight through the driver, for the worker's group commit (src/jobs/reports.ts),
   * where the number of round trips is the cost: each `script` is ONE message of several
   * statements (simple protocol: values inlined as literals with `sqlLiteral`, no parameters), and
   * the transaction's BEGIN and COMMIT travel with the first and the last script. Rows come back as
   * the driver parses them (see `query`). Rolled back if `fn` throws or a statement fails. Each
   * statement fails after TRANSACTION_STATEMENT_TIMEOUT_MS (lock waits included), as Prisma's
   * transaction timeout did: a hung transaction fails instead of holding the worker's reports.
   */
  transaction<T>(fn: (tx: ScriptTx) => Promise<T>): Promise<T>;
  /** Calls `onNotify` for every NOTIFY on `channel`, from any process. Returns an unsubscribe. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export interface ScriptTx {
  /**
   * Runs the statements of `sql` (separated by semicolons) in order, as one message; resolves with
   * each statement's rows. `commit: true` commits the transaction in the same message: the last
   * script of the transaction.
   */
  script(sql: string, opts?: { commit?: boolean }): Promise<Record<string, unknown>[][]>;
}

/** Per statement of a `Database.transaction` (SET LOCAL statement_timeout, sent with the first script). */
export const TRANSACTION_STATEMENT_TIMEOUT_MS = 15_000;
const SET_TIMEOUT = `SET LOCAL statement_timeout = ${TRANSACTION_STATEMENT_TIMEOUT_MS}`;

/** A string as an SQL literal (for `ScriptTx.script`, which takes no parameters). */
export function sqlLiteral(s: string): string {
  return pg.escapeLiteral(s);
}

export interface OpenOptions {
  databaseUrl: string | null;
  dataDir: string;
  poolSize?: number;
  migrate?: boolean;
  logger?: Logger;
  /** Called with every SQL statement Prisma sends (tests count them). */
  onQuery?: (sql: string) => void;
  /**
   * Postgres: send statements that recur as named prepared statements (parsed and planned once per
   * connection). Default true; turn off behind a pooler that cannot keep them (PgBouncer in
   * transaction mode before 1.21).
   */
  preparedStatements?: boolean;
}

/**
 * Names for Prisma's statements, so that a statement sent again on a connection skips Postgres'
 * parse and plan. Only a text seen NAME_AFTER times gets a name (a one-off never costs a backend a
 * cached plan), and at most MAX_NAMED texts ever do (statements whose text varies, e.g. an IN list
 * of n parameters, cannot fill the backends' memory). A name stands for exactly one text in this
 * process, as node-postgres requires.
 */
export function statementNamer(maxNamed = 512, nameAfter = 3): (q: { sql: string }) => string | undefined {
  const named = new Map<string, string>();
  let seen = new Map<string, number>();
  return (q) => {
    const name = named.get(q.sql);
    if (name !== undefined || named.size >= maxNamed) return name;
    const n = (seen.get(q.sql) ?? 0) + 1;
    if (n < nameAfter) {
      if (seen.size >= 4 * maxNamed) seen = new Map(); // forget rare texts now and then
      seen.set(q.sql, n);
      return undefined;
    }
    seen.delete(q.sql);
    const fresh = `haul_${named.size}`;
    named.set(q.sql, fresh);
    return fresh;
  };
}

/** Serialises migrations between processes sharing one Postgres. */
const MIGRATION_LOCK_KEY = 0x6861756c; // "haul"

export async function openDatabase(opts: OpenOptions): Promise<Database> {
  return opts.databaseUrl ? openPostgres(opts.databaseUrl, opts) : openPGlite(opts.dataDir, opts);
}

function makeClient(adapter: PrismaPg | PrismaPGlite, onQuery?: (sql: string) => void): PrismaClient {
  if (!onQuery) return new PrismaClient({ adapter });
  const client = new PrismaClient({ adapter, log: [{ emit: "event", level: "query" }] });
  client.$on("query", (e) => onQuery(e.query));
  return client;
}

async function openPostgres(url: string, opts: OpenOptions): Promise<Database> {
  if (opts.migrate !== false) await migratePostgres(url, opts.logger);
  const pool = new pg.Pool({ connectionString: url, max: opts.poolSize ?? 10 });
  pool.on("error", (err) => opts.logger?.warn({ err }, "idle Postgres connection failed"));
  // (typed as returning a string; undefined is passed on to node-postgres as "unnamed")
  const namer = statementNamer() as (q: { sql: string }) => string;
  const adapter = new PrismaPg(pool, opts.preparedStatements === false ? undefined : { statementNameGenerator: namer });
  const prisma = makeClient(adapter, opts.onQuery);
  const listeners: pg.Client[] = [];
  return {
    kind: "postgres",
    prisma,
    async query<T>(sql: string, params: unknown[]) {
      opts.onQuery?.(sql);
      return (await pool.query(sql, params)).rows as T[];
    },
    async transaction(fn) {
      const client = await pool.connect();
      let begun = false;
      let done = false;
      const tx: ScriptTx = {
        async script(sql, o) {
          if (done) throw new Error("script after the transaction's commit");
          const text = `${begun ? "" : `BEGIN;\n${SET_TIMEOUT};\n`}${sql}${o?.commit ? ";\nCOMMIT" : ""}`;
          opts.onQuery?.(text);
          const wasBegun = begun;
          begun = true;
          const res = await client.query(text);
          if (o?.commit) done = true;
          const all = (Array.isArray(res) ? res : [res]) as pg.QueryResult[];
          // (BEGIN and SET, COMMIT: no rows of the caller's)
          return all.slice(wasBegun ? 0 : 2, o?.commit ? -1 : undefined).map((r) => r.rows as Record<string, unknown>[]);
        },
      };
      try {
        const out = await fn(tx);
        if (!done) {
          if (begun) await client.query("COMMIT");
          done = true;
        }
        client.release();
        return out;
      } catch (err) {
        if (begun && !done) {
          try {
            await client.query("ROLLBACK");
          } catch (e) {
            client.release(e as Error); // a connection that cannot roll back is not reused
            throw err;
          }
        }
        client.release();
        throw err;
      }
    },
    async listen(channel, onNotify) {
      // A dedicated connection per channel, reconnected when it drops. A NOTIFY is only a hint (the
      // reader catches up from the event table), so what is lost while reconnecting costs nothing:
      // `onNotify("")` after a reconnect makes the reader look.
      let client: pg.Client | null = null;
      let closed = false;
      const connect = async (): Promise<void> => {
        const c = new pg.Client({ connectionString: url });
        c.on("notification", (n) => {
          if (n.channel === channel) onNotify(n.payload ?? "");
        });
        c.on("error", (err) => {
          opts.logger?.warn({ err }, "LISTEN connection lost; reconnecting");
          void c.end().catch(() => {});
          if (!closed) setTimeout(() => void connect().then(() => onNotify("")).catch(() => {}), 500).unref();
        });
        await c.connect();
        await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
        client = c;
        listeners.push(c);
      };
      await connect();
      return async () => {
        closed = true;
        await client?.end().catch(() => {});
      };
    },
    async close() {
      await Promise.all(listeners.map((c) => c.end().catch(() => {})));
      await prisma.$disconnect();
      await pool.end().catch(() => {});
    },
  };
}

/**
 * Whether every migration in prisma/migrations is recorded as applied. Checked before loading
 * Prisma's schema engine (WebAssembly, tens of MB that stay resident once loaded), which is needed
 * only when something is pending.
 */
async function upToDate(query: (sql: string) => Promise<{ rows: Record<string, unknown>[] }>): Promise<boolean> {
  const exists = await query(`SELECT to_regclass('_prisma_migrations') IS NOT NULL AS ok`);
  if (!exists.rows[0]?.ok) return false;
  const done = await query(`SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`);
  const applied = new Set(done.rows.map((r) => String(r.migration_name)));
  return readMigrations().migrationDirectories.every((d) => applied.has(d.path));
}

export async function migratePostgres(url: string, logger?: Logger): Promise<string[]> {
  const lock = new pg.Client({ connectionString: url });
  await lock.connect();
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  try {
    await lock.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    if (await upToDate((sql) => lock.query(sql))) return [];
    const applied = await applyMigrations(new PrismaPg(pool));
    if (applied.length) logger?.info({ applied }, "migrations applied");
    return applied;
  } finally {
    await lock.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]).catch(() => {});
    await lock.end().catch(() => {});
    await pool.end().catch(() => {});
  }
}

/**
 * PGlite does not lock its directory, and two processes writing one would corrupt it, so haul takes a
 * lock file (`<data dir>/haul.lock`, holding the pid). A lock left by a process that no longer runs
 * (kill -9) is taken over.
 */
function takeDirLock(dataDir: string): () => void {
  const lockPath = path.join(dataDir, "haul.lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(lockPath, "wx", 0o600);
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      return () => {
        try {
          if (fs.readFileSync(lockPath, "utf8").trim() === String(process.pid)) fs.unlinkSync(lockPath);
        } catch {
          /* already gone */
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const pid = Number(fs.readFileSync(lockPath, "utf8").trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new Error(
          `the data directory ${dataDir} is in use by process ${pid} (lock file ${lockPath}). ` +
            `Stop that process, or set HAUL_DATA_DIR to another directory, or DATABASE_URL to share a Postgres server.`,
        );
      }
      fs.rmSync(lockPath, { force: true }); // stale: its process is gone
    }
  }
  throw new Error(`could not take the lock file in ${dataDir}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function openPGlite(dataDir: string, opts: OpenOptions): Promise<Database> {
  fs.mkdirSync(dataDir, { recursive: true });
  const release = takeDirLock(dataDir);
  let pglite: PGlite | undefined;
  try {
    pglite = new PGlite(path.join(dataDir, "pglite"));
    await pglite.waitReady;
    // Always migrate: nobody else can reach this database to do it.
    const db0 = pglite;
    if (!(await upToDate((sql) => db0.query(sql) as Promise<{ rows: Record<string, unknown>[] }>))) {
      const applied = await applyMigrations(new PrismaPGlite(pglite));
      if (applied.length) opts.logger?.info({ applied }, "migrations applied");
    }
  } catch (err) {
    await pglite?.close().catch(() => {});
    release();
    throw err;
  }
  const db = pglite;
  const prisma = makeClient(new PrismaPGlite(db), opts.onQuery);
  return {
    kind: "pglite",
    prisma,
    async query<T>(sql: string, params: unknown[]) {
      opts.onQuery?.(sql);
      return (await db.query<T>(sql, params)).rows;
    },
    async transaction(fn) {
      // PGlite's own transaction (as Prisma's adapter uses it): BEGIN and COMMIT are its business.
      return db.transaction((t) => {
        let first = true;
        return fn({
          async script(sql) {
            opts.onQuery?.(sql);
            const results = await t.exec(first ? `${SET_TIMEOUT};\n${sql}` : sql);
            const skip = first ? 1 : 0;
            first = false;
            return results.slice(skip).map((r) => r.rows as Record<string, unknown>[]);
          },
        });
      });
    },
    async listen(channel, onNotify) {
      const unsub = await db.listen(channel, (payload) => onNotify(payload));
      return async () => unsub();
    },
    async close() {
      await prisma.$disconnect();
      await db.close();
      release();
    },
  };
}
