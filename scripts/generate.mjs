#!/usr/bin/env node
// postinstall: generates the Prisma client and the Pothos Prisma types into src/generated/.
// Prisma's CLI wants a native schema engine it downloads on first use, which these machines cannot
// reach; `generate` never runs it, so any existing file satisfies the check (docs/operations.md).
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const prismaCli = path.join(root, "node_modules/prisma/build/index.js");
const env = {
  ...process.env,
  // the Pothos generator is found through PATH
  PATH: `${path.join(root, "node_modules/.bin")}${path.delimiter}${process.env.PATH ?? ""}`,
  PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? "/bin/false", PRISMA_HIDE_UPDATE_MESSAGE: "1" };
const r = spawnSync(process.execPath, [prismaCli, "generate"], { cwd: root, stdio: "inherit", env });
process.exit(r.status ?? 1);
