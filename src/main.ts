// Entry point: configuration -> database (migrated) -> app. SIGTERM/SIGINT stop it cleanly.
import { loadConfig, ConfigError } from "./config.js";
import { createLogger } from "./logger.js";
import { openDatabase } from "./store/db.js";
import { buildApp, workerOptions } from "./server/app.js";

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`haul: bad configuration: ${err.message}`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    poolSize: config.dbPoolSize,
    preparedStatements: config.dbPreparedStatements,
    migrate: config.migrateOnStart,
    logger,
  });
  const app = buildApp({ config, db, logger, worker: workerOptions(config) });
  const { tokenFile } = await app.tokens.bootstrap({ adminToken: config.adminToken, dataDir: config.dataDir });
  const url = await app.start();
  logger.info(
    {
      url: `${url}/graphql`,
      database: db.kind === "pglite" ? `embedded PGlite in ${config.dataDir}` : "PostgreSQL",
      storageRoot: config.storageRoot,
      ...(tokenFile ? { adminTokenFile: tokenFile } : {}),
    },
    `haul is listening on ${url}/graphql`,
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "shutting down");
    const force = setTimeout(() => process.exit(1), 10_000).unref();
    await app.stop().catch((err) => logger.error({ err }, "error while stopping the server"));
    await db.close().catch((err) => logger.error({ err }, "error while closing the database"));
    clearTimeout(force);
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

main().catch((err) => {
  console.error("haul: failed to start:", err instanceof Error ? err.message : err);
  process.exit(1);
});
