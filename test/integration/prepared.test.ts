/**
 * Named prepared statements for Prisma's statements on Postgres (src/store/db.ts statementNamer): a
 * text gets a name only once it recurs, a name always stands for one text, the number of names is
 * capped, and with HAUL_DB_PREPARED_STATEMENTS=false nothing is prepared. Checked against the
 * server's own pg_prepared_statements on a one-connection pool.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { openDatabase, statementNamer } from "../../src/store/db.js";
import { createTestDatabase } from "../helpers/db.js";
import { loadConfig } from "../../src/config.js";

test("statementNamer: a name after the third sighting, one text per name, at most maxNamed names", () => {
  const name = statementNamer(2, 3);
  assert.equal(name({ sql: "A" }), undefined);
  assert.equal(name({ sql: "A" }), undefined);
  const a = name({ sql: "A" });
  assert.ok(a);
  assert.equal(name({ sql: "A" }), a, "the same text keeps its name");
  for (let i = 0; i < 3; i++) name({ sql: "B" });
  const b = name({ sql: "B" });
  assert.ok(b);
  assert.notEqual(a, b, "two texts never share a name");
  for (let i = 0; i < 5; i++) assert.equal(name({ sql: "C" }), undefined, "past the cap a new text stays unnamed");
  assert.equal(name({ sql: "A" }), a);
});

test("HAUL_DB_PREPARED_STATEMENTS is read as a boolean, default true", () => {
  assert.equal(loadConfig({}).dbPreparedStatements, true);
  assert.equal(loadConfig({ HAUL_DB_PREPARED_STATEMENTS: "false" }).dbPreparedStatements, false);
});

for (const prepared of [true, false]) {
  test(`Postgres: recurring statements are ${prepared ? "" : "not "}prepared on the connection`, async () => {
    const tdb = await createTestDatabase();
    const db = await openDatabase({ databaseUrl: tdb.url, dataDir: "", poolSize: 1, migrate: false, preparedStatements: prepared });
    try {
      for (let i = 0; i < 5; i++) {
        const rows = await db.prisma.$queryRawUnsafe<{ x: number }[]>(`SELECT $1::int + 1 AS x`, i);
        assert.equal(rows[0]!.x, i + 1, "a prepared statement still gets each call's parameters");
      }
      // the same job query, answered right every time (the model API's statements are named too)
      for (let i = 0; i < 5; i++) assert.equal(await db.prisma.job.count({ where: { owner: `nobody-${i}` } }), 0);
      const rows = await db.prisma.$queryRawUnsafe<{ statement: string }[]>(`SELECT statement FROM pg_prepared_statements`);
      const texts = rows.map((r) => r.statement);
      if (prepared) assert.ok(texts.includes(`SELECT $1::int + 1 AS x`), `prepared: ${JSON.stringify(texts)}`);
      else assert.deepEqual(texts, []);
    } finally {
      await db.close();
      await tdb.drop();
    }
  });
}
