// Generates src/cli/graphql-env.d.ts (the schema's types for gql.tada) from schema.graphql, as
// configured in src/cli/tsconfig.json, with the gql.tada CLI (`gql-tada generate output`).
//
//   npm run cli:gen               regenerate graphql-env.d.ts (commit it)
//   npm run cli:gen -- --check    fail when graphql-env.d.ts is stale relative to schema.graphql, or
//                                 when a document in src/cli does not validate against the schema
//                                 (`gql-tada check`: unknown fields, wrong arguments, ...)
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const CLI_DIR = path.dirname(fileURLToPath(import.meta.url));
const TSCONFIG = path.join(CLI_DIR, "tsconfig.json");
const OUTPUT = path.join(CLI_DIR, "graphql-env.d.ts");
const GQL_TADA = path.join(path.dirname(createRequire(import.meta.url).resolve("gql.tada/package.json")), "bin", "cli.js");

interface SchemaConfig {
  name: string;
  schema: string;
  tadaOutputLocation: string;
}

function gqlTada(args: string[], cwd: string): { status: number; output: string } {
  const r = spawnSync(process.execPath, [GQL_TADA, ...args], { cwd, encoding: "utf8", env: { ...process.env, CI: "true", NO_COLOR: "1" } });
  return { status: r.status ?? 1, output: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

/** The introspection file as `gql-tada generate output` makes it from the current schema.graphql. */
export function generateFresh(): string {
  const config = JSON.parse(fs.readFileSync(TSCONFIG, "utf8")) as { compilerOptions: { plugins: { name: string; schemas: SchemaConfig[] }[] } };
  const plugin = config.compilerOptions.plugins[0]!;
  const schema = plugin.schemas[0]!;
  // The same configuration in a scratch directory, the schema by absolute path, the output there.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "haul-cli-gen-"));
  try {
    const tmpConfig = {
      compilerOptions: {
        plugins: [{ ...plugin, schemas: [{ ...schema, schema: path.resolve(CLI_DIR, schema.schema), tadaOutputLocation: "./graphql-env.d.ts" }] }],
      },
      files: [],
    };
    fs.writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify(tmpConfig, null, 2));
    const r = gqlTada(["generate", "output", "-c", path.join(dir, "tsconfig.json")], dir);
    if (r.status !== 0) throw new Error(`gql-tada generate output failed:\n${r.output}`);
    return fs.readFileSync(path.join(dir, "graphql-env.d.ts"), "utf8");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Problems with the committed file and the documents; empty when all is well. */
export function checkGenerated(): string[] {
  const problems: string[] = [];
  const fresh = generateFresh();
  const committed = fs.existsSync(OUTPUT) ? fs.readFileSync(OUTPUT, "utf8") : "";
  if (fresh !== committed) {
    problems.push(`${path.relative(process.cwd(), OUTPUT)} is stale relative to schema.graphql: run npm run cli:gen and commit the result`);
  }
  const r = gqlTada(["check", "-c", TSCONFIG], path.resolve(CLI_DIR, "../.."));
  if (r.status !== 0) problems.push(`gql-tada check found problems in the CLI's GraphQL documents:\n${r.output.trim()}`);
  return problems;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes("--check")) {
    const problems = checkGenerated();
    for (const p of problems) console.error(p);
    if (problems.length) process.exit(1);
    console.log("src/cli/graphql-env.d.ts is up to date and every document validates");
  } else {
    const r = gqlTada(["generate", "output", "-c", TSCONFIG], path.resolve(CLI_DIR, "../.."));
    process.stdout.write(r.output);
    process.exit(r.status);
  }
}
