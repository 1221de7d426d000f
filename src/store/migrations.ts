// Migrations, created and applied with Prisma's own schema engine compiled to WebAssembly
// (@prisma/schema-engine-wasm), driven through a Prisma driver adapter. The Prisma CLI would need a
// native schema engine that it downloads at first use, and these machines cannot download it
// (docs/operations.md). The folder format is Prisma's own (prisma/migrations/<ts>_<name>/migration.sql
// plus migration_lock.toml) and applied migrations are recorded in the usual _prisma_migrations table,
// so a machine that does have the native engine can run `prisma migrate deploy` on the same database.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { bindMigrationAwareSqlAdapterFactory, type SqlMigrationAwareDriverAdapterFactory } from "@prisma/driver-adapter-utils";
// The package's main entry does `import "*.wasm"`, which Node 20 cannot load; use the bindings directly.
import * as bg from "@prisma/schema-engine-wasm/schema_engine_bg";

const here = path.dirname(fileURLToPath(import.meta.url));
export const PRISMA_DIR = path.resolve(here, "../../prisma");
export const MIGRATIONS_DIR = path.join(PRISMA_DIR, "migrations");
export const SCHEMA_FILE = path.join(PRISMA_DIR, "schema.prisma");

const filters = { externalTables: [], externalEnums: [] };

interface MigrationList {
  baseDir: string;
  lockfile: { path: string; content: string | null };
  shadowDbInitScript: string;
  migrationDirectories: { path: string; migrationFile: { path: string; content: { tag: "ok"; value: string } } }[];
}

interface Engine {
  applyMigrations(input: { migrationsList: MigrationList; filters: typeof filters }): Promise<{ appliedMigrationNames: string[] }>;
  diff(params: unknown): Promise<{ exitCode: number; stdout: string | null }>;
  free(): void;
}

let wasmReady: Promise<void> | undefined;
function loadWasm(): Promise<void> {
  wasmReady ??= (async () => {
    const require = createRequire(import.meta.url);
    const wasmPath = path.join(path.dirname(require.resolve("@prisma/schema-engine-wasm/schema_engine_bg")), "schema_engine_bg.wasm");
    const mod = await WebAssembly.compile(fs.readFileSync(wasmPath));
    const imports = Object.fromEntries(WebAssembly.Module.imports(mod).map((i) => [i.module, bg]));
    const inst = await WebAssembly.instantiate(mod, imports as WebAssembly.Imports);
    bg.__wbg_set_wasm(inst.exports);
    (inst.exports as { __wbindgen_start?: () => void }).__wbindgen_start?.();
  })();
  return wasmReady;
}

/** Reads prisma/migrations in Prisma's folder format. */
export function readMigrations(dir = MIGRATIONS_DIR): MigrationList {
  const lockPath = path.join(dir, "migration_lock.toml");
  const dirs = fs.existsSync(dir)
    ? fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort()
    : [];
  return {
    baseDir: dir,
    lockfile: { path: "migration_lock.toml", content: fs.existsSync(lockPath) ? fs.readFileSync(lockPath, "utf8") : null },
    shadowDbInitScript: "",
    migrationDirectories: dirs.map((name) => ({
      path: name,
      migrationFile: { path: "migration.sql", content: { tag: "ok", value: fs.readFileSync(path.join(dir, name, "migration.sql"), "utf8") } },
    })),
  };
}

async function openEngine(adapterFactory: SqlMigrationAwareDriverAdapterFactory, schema: string): Promise<Engine> {
  await loadWasm();
  const log = () => {};
  return (await bg.SchemaEngine.new(
    { datamodels: [["schema.prisma", schema]] },
    log,
    bindMigrationAwareSqlAdapterFactory(adapterFactory),
  )) as Engine;
}

/** Applies every pending migration; returns the names applied. Idempotent. */
export async function applyMigrations(adapterFactory: SqlMigrationAwareDriverAdapterFactory): Promise<string[]> {
  const engine = await openEngine(adapterFactory, fs.readFileSync(SCHEMA_FILE, "utf8"));
  try {
    const out = await engine.applyMigrations({ migrationsList: readMigrations(), filters });
    return out.appliedMigrationNames;
  } finally {
    engine.free();
  }
}

/**
 * The SQL that takes the migrations folder to schema.prisma, or null when they agree. The folder is
 * replayed on the given (empty, throw-away) database, used as the shadow database.
 */
export async function diffMigrationsToSchema(shadowFactory: SqlMigrationAwareDriverAdapterFactory): Promise<string | null> {
  const schema = fs.readFileSync(SCHEMA_FILE, "utf8");
  const engine = await openEngine(shadowFactory, schema);
  try {
    const list = readMigrations();
    const from = list.migrationDirectories.length ? { tag: "migrations", ...list } : { tag: "empty" };
    const out = await engine.diff({
      from,
      to: { tag: "schemaDatamodel", files: [{ path: "schema.prisma", content: schema }] },
      script: true,
      shadowDatabaseUrl: null,
      exitCode: null,
      filters,
    });
    const sql = (out.stdout ?? "").trim();
    return sql === "" || /^-- This is an empty migration\.?$/.test(sql) ? null : sql + "\n";
  } finally {
    engine.free();
  }
}
