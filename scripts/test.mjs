#!/usr/bin/env node
// The test command (`npm test`): type-check, then every test file under test/ with node:test, on a
// fresh Postgres template database created for this run and dropped at the end.
//   HAUL_TEST_DATABASE_URL  admin connection (default postgresql://postgres@127.0.0.1:5432/postgres)
//   npm test -- test/unit/job-state.test.ts   runs only the files named
//   HAUL_SKIP_TSC=1 npm test                  skips the type-check (local iteration only; CI never sets it)
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
process.chdir(root);
const args = process.argv.slice(2);

function run(cmd, argv, env = process.env) {
  const r = spawnSync(cmd, argv, { stdio: "inherit", env });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

function walk(dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    return d.isDirectory() ? walk(p) : d.name.endsWith(".test.ts") ? [p] : [];
  });
}

if (process.env.HAUL_SKIP_TSC !== "1") {
  console.log("# tsc --noEmit");
  run(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "--noEmit", "-p", "."]);
  run(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "--noEmit", "-p", "web"]);
}

const adminUrl = process.env.HAUL_TEST_DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
const template = `haul_tmpl_${process.pid}_${Date.now().toString(36)}`;
const setup = path.join(root, "test/helpers/template.ts");
const env = { ...process.env, HAUL_TEST_DATABASE_URL: adminUrl, HAUL_TEST_TEMPLATE: template };

console.log(`# creating template database ${template}`);
run(process.execPath, ["--import", "tsx", setup, "create", template], env);
let status = 1;
try {
  const files = args.length ? args : walk("test").sort();
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", "--test", "--test-reporter=spec", "--test-concurrency=4", "--test-timeout=300000", ...files],
    { stdio: "inherit", env },
  );
  status = r.status ?? 1;
} finally {
  spawnSync(process.execPath, ["--import", "tsx", setup, "drop", template], { stdio: "inherit", env });
}
process.exit(status);
