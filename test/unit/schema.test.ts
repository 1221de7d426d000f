// schema.graphql is the printed SDL of the code-first schema; it must never drift.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { printedSchema, SCHEMA_FILE } from "../../scripts/print-schema.js";

test("schema.graphql matches the schema built from the code (run `npm run schema:print` to update)", () => {
  assert.equal(fs.readFileSync(SCHEMA_FILE, "utf8"), printedSchema());
});

test("the names fixed by api.md are all in the schema", () => {
  const sdl = printedSchema();
  for (const needle of [
    "enum JobState", "enum JobType", "enum JobPriority", "enum ErrorContext", "interface Node",
    "type Job implements Node", "type File implements Node", "type JobError", "type JobStateChange",
    "type JobPayload", "job(id: ID!): Job", "node(id: ID!): Node", "jobStateChanged(",
    "createJob(input: CreateJobInput!): JobPayload!", "addFiles(files: [FileInput!]!, jobId: ID!): JobPayload!",
    "suspendJob(id: ID!): JobPayload!", "resumeJob(id: ID!): JobPayload!", "completeJob(id: ID!): JobPayload!",
    "cancelJob(id: ID!): JobPayload!", "updateJob(id: ID!, input: UpdateJobInput!): JobPayload!",
    "totalCount: Int!", "type FileConnection", "type JobConnection",
  ]) {
    assert.ok(sdl.includes(needle), `missing from the schema: ${needle}`);
  }
});
