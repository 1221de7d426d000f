// The embedded default: `npm start` with no DATABASE_URL runs on PGlite in HAUL_DATA_DIR. Real child
// processes, as a new user would run them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createHash } from "node:crypto";
import { ok, gql } from "../helpers/server.js";
import { setDefaultToken } from "../helpers/auth.js";
import { startOrigin } from "../helpers/origin.js";

const root = path.resolve(import.meta.dirname, "../..");

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

interface Proc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function startHaul(env: Record<string, string>): Proc {
  const cleanEnv = { ...process.env };
  delete cleanEnv.DATABASE_URL;
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: root,
    env: { ...cleanEnv, HAUL_LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function waitHealthy(url: string, proc: Proc, ms = 90_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`haul exited early: ${proc.output()}`);
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`haul did not become healthy: ${proc.output()}`);
}

async function stop(proc: Proc): Promise<number | null> {
  if (proc.child.exitCode !== null) return proc.child.exitCode;
  proc.child.kill("SIGTERM");
  const timer = setTimeout(() => proc.child.kill("SIGKILL"), 10_000);
  const code = await proc.exited;
  clearTimeout(timer);
  return code;
}

test("embedded PGlite: migrates at first start, persists across restarts, locks its directory", async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "haul-embedded-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = { HAUL_DATA_DIR: dataDir, PORT: String(port), HOST: "127.0.0.1", HAUL_ALLOWED_NETWORKS: "127.0.0.0/8" };
  let first: Proc | undefined;
  let again: Proc | undefined;
  const origin = await startOrigin([{ path: "/data/a.bin", size: 300_000 }]);
  try {
    first = startHaul(env);
    await waitHealthy(url, first);
    // The "listening" line is written just after the socket opens: give it a moment.
    for (let i = 0; i < 50 && !/embedded PGlite/.test(first.output()); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(first.output(), /migrations applied/);
    assert.match(first.output(), /embedded PGlite/);
    // First start: an ADMIN token in <data dir>/admin-token, mode 0600; the log names the file, never the token.
    const tokenFile = path.join(dataDir, "admin-token");
    const token = fs.readFileSync(tokenFile, "utf8").trim();
    assert.equal(fs.statSync(tokenFile).mode & 0o777, 0o600);
    assert.match(first.output(), new RegExp(tokenFile.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    assert.ok(!first.output().includes(token), "the token is never logged");
    setDefaultToken(url, token);
    assert.equal((await gql(`${url}/graphql`, `{ viewer { user } }`, undefined, null)).errors?.[0]?.extensions?.code, "UNAUTHENTICATED");
    assert.deepEqual((await ok(`${url}/graphql`, `{ viewer { user role } }`)).viewer, { user: "admin", role: "ADMIN" });

    // GraphiQL loads in a browser.
    const page = await fetch(`${url}/graphql`, { headers: { accept: "text/html" } });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /graphiql/i);

    const created = await ok(
      `${url}/graphql`,
      `mutation($u: String!) { createJob(input: { displayName: "persisted", files: [{ remoteUrl: $u, localPath: "dl/a.bin" }] }) { job { id state } } }`,
      { u: origin.urlFor("/data/a.bin") },
    );
    const id = created.createJob.job.id;
    assert.equal((await ok(`${url}/graphql`, `mutation($id: ID!) { resumeJob(id: $id) { job { state } } }`, { id })).resumeJob.job.state, "QUEUED");
    // The worker downloads it.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const j = await ok(`${url}/graphql`, `query($id: ID!) { job(id: $id) { state error { code message } } }`, { id });
      if (j.job.state === "TRANSFERRED") break;
      assert.ok(Date.now() < deadline, `not transferred in time: ${JSON.stringify(j)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(!fs.existsSync(path.join(dataDir, "files/admin/dl/a.bin")), "invisible until completeJob");

    // A second process on the same directory is refused with a message that says why.
    const port2 = await freePort();
    const intruder = startHaul({ ...env, PORT: String(port2) });
    const code = await Promise.race([intruder.exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), 30_000))]);
    if (code === "timeout") intruder.child.kill("SIGKILL");
    assert.notEqual(code, 0);
    assert.match(intruder.output(), /in use by process \d+/);

    assert.equal(await stop(first), 0, first.output());
    assert.ok(!fs.existsSync(path.join(dataDir, "haul.lock")), "the lock file is removed on a clean stop");

    again = startHaul(env);
    await waitHealthy(url, again);
    assert.doesNotMatch(again.output(), /migrations applied/, "nothing left to migrate");
    const job = await ok(`${url}/graphql`, `query($id: ID!) { job(id: $id) { displayName state progress { bytesTransferred } } }`, { id });
    assert.deepEqual(job.job, { displayName: "persisted", state: "TRANSFERRED", progress: { bytesTransferred: "300000" } });
    const done = await ok(`${url}/graphql`, `mutation($id: ID!) { completeJob(id: $id) { job { state } warnings } }`, { id });
    assert.deepEqual(done.completeJob, { job: { state: "ACKNOWLEDGED" }, warnings: [] });
    const bytes = fs.readFileSync(path.join(dataDir, "files/admin/dl/a.bin"));
    assert.equal(createHash("sha256").update(bytes).digest("hex"), origin.sha256Of("/data/a.bin"));
  } finally {
    await origin.close();
    if (first) await stop(first);
    if (again) await stop(again);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test("a lock left by a killed process is taken over", async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "haul-embedded-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let p: Proc | undefined;
  try {
    fs.writeFileSync(path.join(dataDir, "haul.lock"), "999999999"); // no such process
    p = startHaul({ HAUL_DATA_DIR: dataDir, PORT: String(port) });
    await waitHealthy(url, p);
  } finally {
    if (p) await stop(p);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test("a bad configuration value stops start-up with a message naming the variable", async () => {
  for (const [name, value] of [
    ["PORT", "eighty"],
    ["PORT", "70000"],
    ["DATABASE_URL", "mysql://localhost/x"],
    ["HAUL_LOG_LEVEL", "loud"],
  ] as const) {
    const p = startHaul({ [name]: value, HAUL_DATA_DIR: path.join(os.tmpdir(), "haul-never-created") });
    const code = await p.exited;
    assert.equal(code, 2, p.output());
    assert.match(p.output(), new RegExp(`bad configuration: ${name}:`));
  }
});
