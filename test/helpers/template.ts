// Used by scripts/test.mjs: create (and migrate) or drop the run's template database, and drop any
// clone left behind by a crashed test file of this run.
import pg from "pg";
import { migratePostgres } from "../../src/store/db.js";
import { ADMIN_URL, urlFor } from "./db.js";

const [cmd, name] = process.argv.slice(2);
if (!name || !/^haul_tmpl_\w+$/.test(name)) throw new Error("usage: template.ts create|drop haul_tmpl_<id>");
const c = new pg.Client({ connectionString: ADMIN_URL });
await c.connect();
if (cmd === "create") {
  await c.query(`CREATE DATABASE "${name}"`);
  await migratePostgres(urlFor(name));
} else {
  await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  // Clones whose test process is gone (a crash or a kill): drop them too.
  const { rows } = await c.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE 'haul\\_t\\_%'`);
  for (const { datname } of rows) {
    const pid = Number(datname.split("_")[2]);
    let alive = false;
    try {
      process.kill(pid, 0);
      alive = true;
    } catch {}
    if (!alive) await c.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
  }
}
await c.end();
process.exit(0);
