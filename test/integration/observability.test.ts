// /metrics, /healthz, /readyz, request ids, and graceful shutdown on SIGTERM.
import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startServer } from "../helpers/server.js";
import { startOrigin } from "../helpers/origin.js";
import { startHaulChild } from "../helpers/child.js";
import { createTestDatabase } from "../helpers/db.js";
import { act, createJob, jobStatus, waitFor, waitForState } from "../helpers/jobs.js";

function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (want.every((w) => (m[2] ?? "").includes(w))) sum += Number(m[3]);
  }
  return sum;
}

test("/metrics counters move with a transfer; /healthz and /readyz answer; responses carry a request id", async () => {
  const s = await startServer({ worker: true });
  const o = await startOrigin([{ path: "/m.bin", size: 300_000 }]);
  try {
    assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
    const ready = await fetch(`${s.url}/readyz`);
    assert.equal(ready.status, 200, await ready.text());

    const before = await (await fetch(`${s.url}/metrics`)).text();
    const id = await createJob(s.graphqlUrl, [{ remoteUrl: o.urlFor("/m.bin"), localPath: "m/m.bin" }]);
    await act(s.graphqlUrl, "resumeJob", id);
    await waitForState(s.graphqlUrl, id, ["TRANSFERRED"]);
    await s.app.feed.sync();
    const res = await fetch(`${s.url}/metrics`);
    assert.match(res.headers.get("content-type") ?? "", /text\/plain/);
    const after = await res.text();

    assert.ok(metric(after, "haul_bytes_transferred_total") - metric(before, "haul_bytes_transferred_total") >= 300_000);
    for (const state of ["QUEUED", "CONNECTING", "TRANSFERRING", "TRANSFERRED"]) {
      assert.ok(
        metric(after, "haul_transitions_total", { state }) > metric(before, "haul_transitions_total", { state }),
        `transitions to ${state} counted`,
      );
    }
    assert.ok(metric(after, "haul_jobs", { state: "TRANSFERRED" }) >= 1);
    assert.ok(metric(after, "haul_graphql_operation_duration_seconds_count") > metric(before, "haul_graphql_operation_duration_seconds_count"));
    assert.ok(metric(after, "haul_event_lag_seconds_count") > metric(before, "haul_event_lag_seconds_count"));
    assert.match(after, /^haul_active_transfers \d+$/m);
    assert.match(after, /^haul_open_subscriptions \d+$/m);

    // An error is counted by context and code.
    const bad = await createJob(s.graphqlUrl, [{ remoteUrl: o.urlFor("/missing.bin"), localPath: "m/missing.bin" }]);
    await act(s.graphqlUrl, "resumeJob", bad);
    await waitForState(s.graphqlUrl, bad, ["ERROR"]);
    await s.app.feed.sync();
    const errs = await (await fetch(`${s.url}/metrics`)).text();
    assert.ok(metric(errs, "haul_job_errors_total", { context: "REMOTE_FILE", code: "HTTP_404" }) >= 1);

    const r = await fetch(s.graphqlUrl, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "req-123", authorization: `Bearer ${s.userToken}` },
      body: JSON.stringify({ query: "{ viewer { user } }" }),
    });
    assert.equal(r.headers.get("x-request-id"), "req-123");
    const r2 = await fetch(`${s.url}/graphql?query=%7Bviewer%7Buser%7D%7D`, { headers: { authorization: `Bearer ${s.userToken}` } });
    assert.match(r2.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
  } finally {
    await o.close();
    await s.close();
  }
});

test("SIGTERM: stops claiming, checkpoints the running transfer back to QUEUED, exits 0 within 10 s; the job resumes later", async () => {
  const database = await createTestDatabase();
  const storageRoot = fs.mkdtempSync(path.join(os.tmpdir(), "haul-term-"));
  const o = await startOrigin([{ path: "/t.bin", size: 6_000_000 }]);
  o.fault("/t.bin", { type: "rate", bytesPerSecond: 1_000_000 });
  const child = await startHaulChild({ databaseUrl: database.url, storageRoot });
  let next: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    const id = await createJob(child.graphqlUrl, [{ remoteUrl: o.urlFor("/t.bin"), localPath: "t/t.bin", sha256: o.sha256Of("/t.bin") }]);
    await act(child.graphqlUrl, "resumeJob", id);
    await waitFor(child.graphqlUrl, id, (j) => j.state === "TRANSFERRING" && Number(j.progress.bytesTransferred) > 0, "bytes moving");
    const t0 = Date.now();
    await child.kill("SIGTERM", 12_000);
    const took = Date.now() - t0;
    assert.ok(took < 10_000, `exited in ${took} ms`);
    assert.deepEqual(child.exited(), { code: 0, signal: null });

    next = await startServer({ database, storageRoot, worker: true });
    const stopped = await jobStatus(next.graphqlUrl, id);
    // Back in the queue, or already picked up again by the new process: never stuck, never lost.
    assert.ok(["QUEUED", "CONNECTING", "TRANSFERRING", "TRANSFERRED"].includes(stopped.state), JSON.stringify(stopped));
    const events = await next.db.prisma.jobEvent.findMany({ where: { kind: "STATE_CHANGED" }, orderBy: { seq: "asc" } });
    assert.ok(
      events.some((e) => e.previousState === "TRANSFERRING" && e.state === "QUEUED" && e.actor === null),
      "the shutdown yielded the job (TRANSFERRING -> QUEUED)",
    );
    const done = await waitForState(next.graphqlUrl, id, ["TRANSFERRED", "ERROR"], 30_000);
    assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
    const resumed = o.requests("/t.bin").at(-1)!;
    assert.match(resumed.range ?? "", /^bytes=[1-9]\d*-$/, "resumed at the checkpointed offset");
  } finally {
    await child.stop();
    await next?.close();
    await o.close();
    fs.rmSync(storageRoot, { recursive: true, force: true });
    await database.drop();
  }
});
