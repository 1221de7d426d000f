// Prints the schema (sorted) to schema.graphql, or with --check fails when the file is stale.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { printSchema, lexicographicSortSchema } from "graphql";
import { schema } from "../src/graphql/schema/index.js";

export const SCHEMA_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../schema.graphql");

export function printedSchema(): string {
  return printSchema(lexicographicSortSchema(schema)) + "\n";
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes("--check")) {
    const current = fs.existsSync(SCHEMA_FILE) ? fs.readFileSync(SCHEMA_FILE, "utf8") : "";
    if (current !== printedSchema()) {
      console.error("schema.graphql is stale: run `npm run schema:print`");
      process.exit(1);
    }
    console.log("schema.graphql is up to date");
  } else {
    fs.writeFileSync(SCHEMA_FILE, printedSchema());
    console.log(`wrote ${SCHEMA_FILE}`);
  }
}
