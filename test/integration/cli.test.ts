// The `haul` CLI, run as the real binary (`node bin/haul ...`, a child process) against real servers
// started here: job verbs, errors and exit codes, transfers end to end (progress, 404, Ctrl-C),
// monitor (live, and across a cut connection to a second server on the same database), tokens, the
// admin-token fallback, and the generated GraphQL types being current.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { startServer, ok, type TestServer } from "../helpers/server.js";
import { startOrigin, type Origin } from "../helpers/origin.js";
import { createJob, act, jobStatus, waitForState, uuidOf } from "../helpers/jobs.js";
import { REPO_ROOT, freePort, waitFor } from "../helpers/subscribe.js";
import type { TestDatabase } from "../helpers/db.js";

const BIN = path.join(REPO_ROOT, "bin", "haul");

type Server = TestServer & { database: TestDatabase };
let s: Server;
let o: Origin;
/** The CLI runs from here: no ./.haul/admin-token to fall back on by accident. */
let cwd: string;

before(async () => {
  s = await startServer({ worker: true, retryDelayFloorSeconds: 0 });
  o = await startOrigin();
  cwd = fs.mkdtempSync(path.join(os.tmpdir(), "haul-cli-cwd-"));
});
after(async () => {
  await s?.close();
  await o?.close();
  if (cwd) fs.rmSync(cwd, { recursive: true, force: true });
});

// ---- running the binary ----------------------------------------------------------------------------

interface RunOptions {
  url?: string;
  /** undefined: the server's USER token; null: no HAUL_TOKEN at all. */
  token?: string | null;
  env?: Record<string, string>;
  cwd?: string;
}

function cliEnv(opts: RunOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.HAUL_URL;
  delete env.HAUL_TOKEN;
  delete env.HAUL_DATA_DIR;
  env.HAUL_URL = opts.url ?? s.url;
  const token = opts.token === undefined ? s.userToken : opts.token;
  if (token !== null) env.HAUL_TOKEN = token;
  return { ...env, ...opts.env };
}

interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Waits until `pred(stdout, stderr)` holds (bounded). */
  until(pred: (stdout: string, stderr: string) => boolean, label: string, ms?: number): Promise<void>;
}

const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of running) c.kill("SIGKILL");
});

function spawnHaul(args: string[], opts: RunOptions = {}): Running {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd ?? cwd, env: cliEnv(opts), stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += String(d)));
  child.stderr!.on("data", (d) => (err += String(d)));
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("close", (code, signal) => {
      done = true;
      running.delete(child);
      resolve({ code, signal });
    }),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    until: (pred, label, ms = 20_000) =>
      waitFor(
        () => {
          if (pred(out, err)) return true;
          if (done) throw new Error(`haul ${args.join(" ")} exited before: ${label}\nstdout: ${out}\nstderr: ${err}`);
          return false;
        },
        label,
        { ms, intervalMs: 20, detail: () => `stdout: ${out.slice(-1500)}\nstderr: ${err.slice(-1500)}` },
      ),
  };
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function haul(args: string[], opts: RunOptions = {}, ms = 60_000): Promise<Result> {
  const r = spawnHaul(args, opts);
  const timer = setTimeout(() => r.child.kill("SIGKILL"), ms);
  const { code } = await r.exited;
  clearTimeout(timer);
  return { code, stdout: r.stdout(), stderr: r.stderr() };
}

/** Runs and requires exit 0; returns stdout. */
async function ok0(args: string[], opts: RunOptions = {}): Promise<string> {
  const r = await haul(args, opts);
  assert.equal(r.code, 0, `haul ${args.join(" ")} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

async function json(args: string[], opts: RunOptions = {}): Promise<any> {
  return JSON.parse(await ok0([...args, "--json"], opts));
}

function sha256File(p: string): string {
  return createHash("sha256").update(fs.readFileSync(p)).digest("hex");
}

// ---- job verbs ---------------------------------------------------------------------------------------

test("create, add, list, info (--json), set, resume, suspend, cancel", async () => {
  // Slow enough that the job is still transferring when it is suspended.
  o.add({ path: "/verbs/slow.bin", size: 20_000_000 });
  o.fault("/verbs/slow.bin", { type: "rate", bytesPerSecond: 100_000 });

  const id = (await ok0(["create", "--name", "cli-demo", "--priority", "low", "--description", "made by the CLI test"])).trim();
  assert.match(id, /^\S+$/, "create prints the job id alone");

  const added = await ok0(["add", id, o.urlFor("/verbs/slow.bin"), "verbs/slow.bin", "--sha256", o.sha256Of("/verbs/slow.bin")]);
  assert.equal(added.trim(), `${id}  SUSPENDED`);

  const list = await ok0(["list"]);
  const row = list.split("\n").find((l) => l.startsWith(id));
  assert.ok(row, list);
  assert.match(row, /cli-demo\s+SUSPENDED\s+LOW\s+local\s+0\/1/);

  const listed = await json(["list", "--state", "SUSPENDED,QUEUED"]);
  const node = listed.jobs.edges.map((e: any) => e.node).find((n: any) => n.id === id);
  assert.equal(node.state, "SUSPENDED");
  assert.equal(node.displayName, "cli-demo");
  assert.equal(listed.jobs.totalCount, listed.jobs.edges.length);
  const cancelledOnly = await json(["list", "--state", "CANCELLED"]);
  assert.ok(!cancelledOnly.jobs.edges.some((e: any) => e.node.id === id));

  // The bare UUID works as well as the global id.
  const info = await ok0(["info", uuidOf(id)]);
  assert.match(info, /name:\s+cli-demo/);
  assert.match(info, /state:\s+SUSPENDED/);
  assert.match(info, /description:\s+made by the CLI test/);
  assert.ok(info.includes(o.urlFor("/verbs/slow.bin")) && info.includes("verbs/slow.bin"), info);

  const setOut = await ok0([
    "set",
    id,
    "--priority",
    "high",
    "--retry-delay",
    "2m",
    "--no-progress-timeout",
    "1h",
    "--max-download-time",
    "1d",
    "--max-bytes-per-second",
    "64k",
    "--name",
    "renamed",
    "--header",
    "X-Test: 1",
    "--header",
    "X-Other: two",
    "--credentials",
    "user:secret",
  ]);
  assert.equal(setOut.trim(), `${id}  SUSPENDED`);
  let j = (await json(["info", id])).job;
  assert.equal(j.priority, "HIGH");
  assert.equal(j.minimumRetryDelay, 120);
  assert.equal(j.noProgressTimeout, 3600);
  assert.equal(j.maximumDownloadTime, 86400);
  assert.equal(j.maxBytesPerSecond, "65536");
  assert.equal(j.displayName, "renamed");
  assert.equal(j.hasCredentials, true);
  assert.deepEqual([...j.httpHeaderNames].sort(), ["X-Other", "X-Test"]);
  assert.equal(j.files.totalCount, 1);
  assert.equal(j.files.edges[0].node.sha256, o.sha256Of("/verbs/slow.bin"));

  await ok0(["set", id, "--clear-credentials", "--clear-headers", "--max-bytes-per-second", "0"]);
  j = (await json(["info", id])).job;
  assert.equal(j.hasCredentials, false);
  assert.deepEqual(j.httpHeaderNames, []);
  assert.equal(j.maxBytesPerSecond, null);

  assert.match(await ok0(["resume", id]), new RegExp(`^${id}  (QUEUED|CONNECTING|TRANSFERRING)\\n$`));
  await waitForState(s.graphqlUrl, id, ["TRANSFERRING"]);
  assert.equal((await ok0(["suspend", id])).trim(), `${id}  SUSPENDED`);
  assert.equal((await jobStatus(s.graphqlUrl, id)).state, "SUSPENDED");
  assert.equal((await ok0(["cancel", id])).trim(), `${id}  CANCELLED`);

  // Resuming a cancelled job: the API's INVALID_STATE, exit 1.
  const again = await haul(["resume", id]);
  assert.equal(again.code, 1, again.stderr);
  assert.match(again.stderr, /^haul: .+ \(INVALID_STATE\)\n$/);
  assert.equal(again.stdout, "");
});

test("create takes files as --file pairs and positional pairs, and --resume queues it", async () => {
  o.add({ path: "/pairs/a.bin", size: 10_000 });
  o.add({ path: "/pairs/b.bin", size: 20_000 });
  const created = await json([
    "create",
    "--file",
    o.urlFor("/pairs/a.bin"),
    "pairs/a.bin",
    o.urlFor("/pairs/b.bin"),
    "pairs/b.bin",
    "--retry-delay",
    "30",
    "--resume",
  ]);
  const id = created.createJob.job.id;
  assert.equal(created.createJob.job.displayName, "a.bin", "the default name is the first file's");
  assert.ok(["QUEUED", "CONNECTING", "TRANSFERRING", "TRANSFERRED"].includes(created.resumeJob.job.state), JSON.stringify(created));
  await waitForState(s.graphqlUrl, id, ["TRANSFERRED"]);
  const info = (await json(["info", id])).job;
  assert.deepEqual(
    info.files.edges.map((e: any) => e.node.localPath),
    ["pairs/a.bin", "pairs/b.bin"],
  );
  assert.equal(info.minimumRetryDelay, 30);
  const completed = await ok0(["complete", id]);
  assert.equal(completed, `${id}  ACKNOWLEDGED\n  local/pairs/a.bin\n  local/pairs/b.bin\n`);
  assert.equal(sha256File(path.join(s.filesRoot, "pairs/b.bin")), o.sha256Of("/pairs/b.bin"));

  const odd = await haul(["create", o.urlFor("/pairs/a.bin")]);
  assert.equal(odd.code, 2, "an odd number of url/path values is a usage error");
  assert.match(odd.stderr, /pairs of <url> <localPath>/);
});

// ---- errors ------------------------------------------------------------------------------------------

test("errors print the API's message and code and exit 1; usage errors exit 2", async () => {
  const missing = "00000000-0000-4000-8000-000000000000";
  const info = await haul(["info", missing]);
  assert.equal(info.code, 1);
  assert.equal(info.stderr, `haul: no job with id ${missing} (NOT_FOUND)\n`);

  const resume = await haul(["resume", missing]);
  assert.equal(resume.code, 1);
  assert.match(resume.stderr, /^haul: .*\(NOT_FOUND\)\n$/);

  const bad = await haul(["info", "not-an-id"]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /\(BAD_USER_INPUT\)/);

  // Another user's job is NOT_FOUND to a USER, as a missing one.
  const adminJob = (await ok0(["create", "--name", "admin's"], { token: s.adminToken })).trim();
  const hidden = await haul(["info", adminJob]);
  assert.equal(hidden.code, 1);
  assert.match(hidden.stderr, /\(NOT_FOUND\)/);
  // ... and an admin sees it with --all-users.
  const all = await json(["list", "--all-users"], { token: s.adminToken });
  assert.ok(all.jobs.edges.some((e: any) => e.node.id === adminJob && e.node.owner === "admin"));
  const forbidden = await haul(["list", "--all-users"]);
  assert.equal(forbidden.code, 1);
  assert.match(forbidden.stderr, /\(FORBIDDEN\)/);
  await ok0(["cancel", adminJob], { token: s.adminToken });

  const badToken = await haul(["list"], { token: "haul_not-a-real-token-but-long-enough-to-look-like-one" });
  assert.equal(badToken.code, 1);
  assert.match(badToken.stderr, /\(UNAUTHENTICATED\)\n$/);

  const port = await freePort();
  const down = await haul(["list"], { url: `http://127.0.0.1:${port}` });
  assert.equal(down.code, 1);
  assert.match(down.stderr, new RegExp(`unreachable at http://127\\.0\\.0\\.1:${port}`));

  for (const args of [["list", "--state", "BOGUS"], ["set", missing], ["frobnicate"], ["list", "--first", "0"], ["info"]]) {
    const r = await haul(args);
    assert.equal(r.code, 2, `haul ${args.join(" ")}: ${r.stderr}`);
  }
  const help = await haul(["--help"]);
  assert.equal(help.code, 0);
  for (const verb of ["transfer", "create", "add", "resume", "suspend", "complete", "cancel", "set", "list", "info", "monitor", "token", "whoami"]) {
    assert.match(help.stdout, new RegExp(`\\n  ${verb}\\b`), `help lists ${verb}`);
  }
});

// ---- transfer ----------------------------------------------------------------------------------------

test("transfer downloads a file end to end with a progress bar on stderr, then completes it", async () => {
  o.add({ path: "/t/file.bin", size: 1_500_000 });
  o.fault("/t/file.bin", { type: "rate", bytesPerSecond: 600_000 });
  const r = await haul(["transfer", o.urlFor("/t/file.bin"), "t/file.bin", "--sha256", o.sha256Of("/t/file.bin")]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "local/t/file.bin\n");
  assert.equal(sha256File(path.join(s.filesRoot, "t/file.bin")), o.sha256Of("/t/file.bin"));
  // Progress lines (not a terminal: one line per change, at most every second), then the end.
  assert.match(r.stderr, /\[[#-]+\]\s+\d+%\s+[\d.]+ (B|KiB|MiB) \/ 1\.43 MiB\s+[\d.]+ (B|KiB|MiB)\/s(\s+ETA \d+:\d\d)?\s+TRANSFERRING/);
  assert.match(r.stderr, /100%.*TRANSFERRED/);
  assert.match(r.stderr, /done: 1\.43 MiB/);
  const id = /job (\S+): /.exec(r.stderr)![1]!;
  const j = await jobStatus(s.graphqlUrl, id);
  assert.equal(j.state, "ACKNOWLEDGED");
  assert.equal((await json(["info", id])).job.priority, "FOREGROUND", "transfer's default priority, as Start-BitsTransfer");
});

test("transfer of a missing file fails with HTTP_404 and exit 1", async () => {
  const r = await haul(["transfer", o.urlFor("/t/missing.bin"), "t/missing.bin"]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^haul: the transfer failed: .*404.* \(HTTP_404\)$/m);
  assert.equal(r.stdout, "");
  const id = /job (\S+): /.exec(r.stderr)![1]!;
  assert.equal((await jobStatus(s.graphqlUrl, id)).state, "ERROR");
  assert.ok(!fs.existsSync(path.join(s.filesRoot, "t/missing.bin")));
});

test("transfer --asynchronous only creates and resumes; complete finishes it", async () => {
  o.add({ path: "/t/async.bin", size: 50_000 });
  const r = await haul(["transfer", "--asynchronous", o.urlFor("/t/async.bin"), "t/async.bin"]);
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.trim();
  assert.match(r.stderr, new RegExp(`haul complete ${id.replace(/[+/=]/g, "\\$&")}`));
  await waitForState(s.graphqlUrl, id, ["TRANSFERRED"]);
  assert.ok(!fs.existsSync(path.join(s.filesRoot, "t/async.bin")), "invisible until complete");
  assert.equal(await ok0(["complete", id]), `${id}  ACKNOWLEDGED\n  local/t/async.bin\n`);
  assert.equal(sha256File(path.join(s.filesRoot, "t/async.bin")), o.sha256Of("/t/async.bin"));
});

test("Ctrl-C during a transfer suspends the job and says how to resume it", async () => {
  o.add({ path: "/t/slow.bin", size: 10_000_000 });
  o.fault("/t/slow.bin", { type: "rate", bytesPerSecond: 100_000 });
  const run = spawnHaul(["transfer", o.urlFor("/t/slow.bin"), "t/slow.bin"]);
  await run.until((_out, err) => /\]\s+\d+%\s+[1-9][\d.]* (B|KiB|MiB) \/.*TRANSFERRING/.test(err), "a progress line with bytes transferred");
  run.child.kill("SIGINT");
  const { code } = await run.exited;
  assert.equal(code, 130, run.stderr());
  const id = /job (\S+): /.exec(run.stderr())![1]!;
  assert.match(run.stderr(), new RegExp(`haul resume ${id.replace(/[+/=]/g, "\\$&")}`));
  const j = await jobStatus(s.graphqlUrl, id);
  assert.equal(j.state, "SUSPENDED");
  assert.ok(BigInt(j.progress.bytesTransferred) > 0n);
  // It resumes where it stopped (and here, to finish quickly, without the throttle).
  o.clearFaults("/t/slow.bin");
  await ok0(["resume", id]);
  await waitForState(s.graphqlUrl, id, ["TRANSFERRED"]);
  await ok0(["cancel", id]);
});

// ---- monitor -----------------------------------------------------------------------------------------

test("monitor prints a job's transitions live, one line each; Ctrl-C exits 0", async () => {
  o.add({ path: "/m/live.bin", size: 100_000 });
  const mon = spawnHaul(["monitor"]);
  await mon.until((_o, err) => err.includes("monitoring"), "monitor connected");
  const id = await createJob(s.graphqlUrl, [{ remoteUrl: o.urlFor("/m/live.bin"), localPath: "m/live.bin" }], { displayName: "live-one" });
  await act(s.graphqlUrl, "resumeJob", id);
  await mon.until((out) => out.includes("TRANSFERRING -> TRANSFERRED"), "the TRANSFERRED line");
  await act(s.graphqlUrl, "completeJob", id);
  await mon.until((out) => out.includes("TRANSFERRED -> ACKNOWLEDGED"), "the ACKNOWLEDGED line");
  mon.child.kill("SIGINT");
  assert.equal((await mon.exited).code, 0);
  const lines = mon
    .stdout()
    .trim()
    .split("\n")
    .filter((l) => l.includes(id));
  assert.deepEqual(
    lines.map((l) => / {2}(\S+ -> \S+)$/.exec(l)?.[1]),
    ["(new) -> SUSPENDED", "SUSPENDED -> QUEUED", "QUEUED -> CONNECTING", "CONNECTING -> TRANSFERRING", "TRANSFERRING -> TRANSFERRED", "TRANSFERRED -> ACKNOWLEDGED"],
  );
  for (const l of lines) assert.match(l, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ  #\d+  \S+  live-one  /);

  // --job replays that job's history, --json prints the subscription's data, one document a line.
  const hist = spawnHaul(["monitor", "--job", id, "--json"]);
  await hist.until((out) => out.includes('"ACKNOWLEDGED"'), "the replayed history");
  hist.child.kill("SIGINT");
  assert.equal((await hist.exited).code, 0);
  const events = hist
    .stdout()
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l).jobStateChanged);
  assert.deepEqual(
    events.map((e) => e.state),
    ["SUSPENDED", "QUEUED", "CONNECTING", "TRANSFERRING", "TRANSFERRED", "ACKNOWLEDGED"],
  );
  assert.ok(events.every((e) => e.job.id === id));
});

/** A TCP proxy the test can cut (every connection dropped, new ones refused) and point elsewhere. */
async function startProxy(targetPort: number) {
  let target = targetPort;
  let cut = false;
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    connections++;
    const upstream = net.connect(target, "127.0.0.1");
    sockets.add(client);
    sockets.add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", close).on("close", close);
    upstream.on("error", close).on("close", close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    connections: () => connections,
    cut() {
      cut = true;
      for (const sock of sockets) sock.destroy();
      sockets.clear();
    },
    restore(port: number) {
      target = port;
      cut = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const sock of sockets) sock.destroy();
        server.close(() => resolve());
      }),
  };
}

test("monitor reconnects after the connection drops and prints what happened meanwhile, none missed, none twice", async () => {
  // Two API-only servers on one database (no worker: every transition is the test's own).
  const a = await startServer();
  const b = await startServer({ database: a.database });
  const proxy = await startProxy(Number(new URL(a.url).port));
  const mon = spawnHaul(["monitor", "--json"], { url: proxy.url, token: a.userToken });
  try {
    await mon.until((_o, err) => err.includes("monitoring"), "monitor connected through the proxy");
    const job = await createJob(a.graphqlUrl, [{ remoteUrl: o.urlFor("/m/x.bin"), localPath: "m/x.bin" }], { displayName: "across" });
    await ok(a.graphqlUrl, `mutation($id: ID!) { resumeJob(id: $id) { job { state } } }`, { id: job }, a.userToken);
    await mon.until((out) => out.trim().split("\n").length >= 2, "the first two transitions");

    // Cut: the WebSocket drops and reconnects are refused while the transitions go on elsewhere.
    proxy.cut();
    await mon.until((_o, err) => err.includes("lost the connection"), "the CLI notices the drop");
    const viaB = (m: string, id: string) => ok(b.graphqlUrl, `mutation($id: ID!) { ${m}(id: $id) { job { state } } }`, { id }, a.userToken);
    await viaB("suspendJob", job);
    await viaB("resumeJob", job);
    await viaB("cancelJob", job);
    const other = await createJob(b.graphqlUrl, [{ remoteUrl: o.urlFor("/m/y.bin"), localPath: "m/y.bin" }], { displayName: "while away" });
    await new Promise((r) => setTimeout(r, 500)); // a reconnect attempt or two hits the cut

    // Back, to the other server: the CLI resumes after its last cursor.
    proxy.restore(Number(new URL(b.url).port));
    await mon.until((out) => out.includes('"while away"'), "the transitions made while disconnected", 30_000);
    // Live again, through the new connection.
    await ok(b.graphqlUrl, `mutation($id: ID!) { cancelJob(id: $id) { job { state } } }`, { id: other }, a.userToken);
    await mon.until((out) => out.trim().split("\n").length >= 7, "the live transition after reconnecting");
    assert.match(mon.stderr(), /reconnected; resuming after #\d+/);

    mon.child.kill("SIGINT");
    assert.equal((await mon.exited).code, 0);
    const events = mon
      .stdout()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).jobStateChanged);
    assert.deepEqual(
      events.map((e) => [e.job.id, e.previousState, e.state]),
      [
        [job, null, "SUSPENDED"],
        [job, "SUSPENDED", "QUEUED"],
        [job, "QUEUED", "SUSPENDED"],
        [job, "SUSPENDED", "QUEUED"],
        [job, "QUEUED", "CANCELLED"],
        [other, null, "SUSPENDED"],
        [other, "SUSPENDED", "CANCELLED"],
      ],
    );
    const cursors = events.map((e) => BigInt(e.cursor));
    for (let i = 1; i < cursors.length; i++) assert.ok(cursors[i]! > cursors[i - 1]!, "in commit order, no duplicate");
  } finally {
    mon.child.kill("SIGKILL");
    await proxy.close();
    await b.close();
    await a.close();
  }
});

// ---- tokens and the token fallback ---------------------------------------------------------------------

test("token create, list and revoke (ADMIN); whoami", async () => {
  const admin = { token: s.adminToken };
  const created = await haul(["token", "create", "alice", "--role", "user", "--description", "alice's laptop"], admin);
  assert.equal(created.code, 0, created.stderr);
  const token = created.stdout.trim();
  assert.match(token, /^haul_[A-Za-z0-9_-]{40,}$/);
  assert.match(created.stderr, /shown only this once/);

  assert.equal(await ok0(["whoami"], { token }), `alice (USER) on ${s.url}, token from HAUL_TOKEN\n`);
  assert.deepEqual(await json(["whoami"], { token }), { viewer: { user: "alice", role: "USER" } });

  const listed = await json(["token", "list"], admin);
  const rec = listed.apiTokens.find((t: any) => t.user === "alice");
  assert.ok(rec, JSON.stringify(listed));
  assert.equal(rec.description, "alice's laptop");
  assert.equal(rec.revokedAt, null);
  const table = await ok0(["token", "list"], admin);
  assert.match(table, new RegExp(`^${rec.id}\\s+alice\\s+USER\\s+alice's laptop`, "m"));

  // A USER may not manage tokens.
  const denied = await haul(["token", "list"], { token });
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /\(FORBIDDEN\)/);

  const revoked = await ok0(["token", "revoke", rec.id], admin);
  assert.match(revoked, new RegExp(`^${rec.id}  revoked \\d{4}-`));
  const after = await haul(["whoami"], { token });
  assert.equal(after.code, 1);
  assert.match(after.stderr, /\(UNAUTHENTICATED\)/);
  assert.ok((await json(["token", "list"], admin)).apiTokens.find((t: any) => t.id === rec.id).revokedAt);
});

test("without HAUL_TOKEN the CLI uses the admin-token file of HAUL_DATA_DIR, or of ./.haul", async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "haul-cli-data-"));
  try {
    fs.writeFileSync(path.join(dataDir, "admin-token"), `${s.adminToken}\n`, { mode: 0o600 });
    const viaEnv = await ok0(["whoami"], { token: null, env: { HAUL_DATA_DIR: dataDir } });
    assert.equal(viaEnv, `admin (ADMIN) on ${s.url}, token from ${path.join(dataDir, "admin-token")}\n`);

    // The default data directory, ./.haul, relative to where the CLI runs.
    fs.mkdirSync(path.join(dataDir, ".haul"));
    fs.writeFileSync(path.join(dataDir, ".haul", "admin-token"), s.adminToken);
    assert.match(await ok0(["whoami"], { token: null, cwd: dataDir }), /^admin \(ADMIN\)/);

    // --token wins over everything.
    assert.match(await ok0(["whoami", "--token", s.userToken], { token: null, cwd: dataDir }), /^local \(USER\)/);

    const none = await haul(["whoami"], { token: null, env: { HAUL_DATA_DIR: path.join(dataDir, "nowhere") } });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no API token/);
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

// ---- typed documents --------------------------------------------------------------------------------------

test("src/cli/graphql-env.d.ts is current with schema.graphql and every CLI document validates", async () => {
  const r = spawnHaulScript(["--import", "tsx", path.join(REPO_ROOT, "src/cli/codegen.ts"), "--check"]);
  const { code } = await r.exited;
  assert.equal(code, 0, `${r.stdout()}${r.stderr()}`);
});

function spawnHaulScript(args: string[]) {
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (d) => (out += String(d)));
  child.stderr.on("data", (d) => (err += String(d)));
  return {
    stdout: () => out,
    stderr: () => err,
    exited: new Promise<{ code: number | null }>((resolve) => child.once("close", (code) => resolve({ code }))),
  };
}
