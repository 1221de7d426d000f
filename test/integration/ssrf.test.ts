// Where haul may fetch from and where it may write (issue 4, items 4 and 5), end to end through
// the API and the worker. Only loopback addresses and names that resolve to loopback are used:
// "refused" destinations are loopback addresses outside the server's allowedNetworks, and the
// servers here allow only one /32 (127.0.0.1 or 127.0.0.2) instead of the tests' usual 127.0.0.0/8.
//
// DNS rebinding (item 4) is not testable with real DNS on loopback only. It is covered by where the
// check sits: haul never checks a host name and then connects by name later; guardedLookup is the
// `lookup` hook of every request (the first one and every redirect hop), so the addresses it
// checks are exactly the ones handed to connect(), whatever a resolver answered a moment before.
// The rebinding case itself (a resolver whose second answer is a refused address) is unit-tested
// with a fake resolver in test/unit/address-policy.test.ts ("every connection re-checks, so a
// rebinding answer is refused"); it is not repeated here. What is tested here is the integration:
// a name is refused on the address it connects to (localhost), and redirects are checked per hop.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import dns from "node:dns/promises";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import type { AddressInfo, Socket } from "node:net";
import { createHash } from "node:crypto";
import { startServer, gql, codeOf, type GqlResult } from "../helpers/server.js";
import { startOrigin, type Origin } from "../helpers/origin.js";
import { act, createJob, jobStatus, uuidOf, waitForState } from "../helpers/jobs.js";

// ---------------------------------------------------------------------------------------------
// A tiny origin on any loopback address (startOrigin binds 127.0.0.1 only)

interface Tiny {
  host: string;
  port: number;
  url: string;
  /** request paths received, in order */
  requests: string[];
  close(): Promise<void>;
}

const BODY = Buffer.from("payload from a tiny loopback origin\n".repeat(100));

/**
 * GET /file answers BODY; `redirects` maps a path to a Location (302). Anything else is 404.
 * `port` 0 = any free port. Rejects if the address cannot be bound (EADDRINUSE, EADDRNOTAVAIL).
 */
async function startTiny(host: string, port = 0, redirects: Record<string, string> = {}): Promise<Tiny> {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const p = (req.url ?? "/").split("?")[0]!;
    requests.push(p);
    const loc = redirects[p];
    if (loc !== undefined) {
      res.writeHead(302, { location: loc, "content-length": 0 });
      res.end();
    } else if (p === "/file") {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": BODY.length });
      res.end(BODY);
    } else {
      res.writeHead(404, { "content-length": 0 });
      res.end();
    }
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  const hostPart = host.includes(":") ? `[${host}]` : host;
  let closing: Promise<void> | null = null;
  return {
    host,
    port: bound,
    url: `http://${hostPart}:${bound}`,
    requests,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
  };
}

async function canBind(host: string): Promise<boolean> {
  try {
    const t = await startTiny(host);
    await t.close();
    return true;
  } catch {
    return false;
  }
}

/** Tiny origins listening on the same port on every host given (retries on a port clash). */
async function startOnSamePort(hosts: string[]): Promise<Tiny[]> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const started: Tiny[] = [];
    try {
      started.push(await startTiny(hosts[0]!));
      for (const h of hosts.slice(1)) started.push(await startTiny(h, started[0]!.port));
      return started;
    } catch {
      await Promise.all(started.map((t) => t.close()));
    }
  }
  throw new Error(`could not bind one port on all of ${hosts.join(", ")}`);
}

const IPV6 = await canBind("::1");
const NO_IPV6 = IPV6 ? false : "::1 is not available on this host (no IPv6 loopback): skipped";

// ---------------------------------------------------------------------------------------------
// Servers and fixtures

type Server = Awaited<ReturnType<typeof startServer>>;
/** allowedNetworks ["127.0.0.1/32"] */
let s1: Server;
/** allowedNetworks ["127.0.0.2/32"] */
let s2: Server;
let o: Origin; // 127.0.0.1, the fixture origin
const tinies: Tiny[] = [];
const outsides: string[] = [];

async function tiny(host: string, port = 0, redirects: Record<string, string> = {}): Promise<Tiny> {
  const t = await startTiny(host, port, redirects);
  tinies.push(t);
  return t;
}

/** A fresh directory outside the storage root, which must stay empty. */
function outsideDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "haul-outside-"));
  outsides.push(d);
  return d;
}

function assertEmpty(dir: string, what: string): void {
  const entries = fs.readdirSync(dir, { recursive: true }).map(String);
  const described = entries.map((e) => {
    const st = fs.lstatSync(path.join(dir, e));
    return st.isDirectory() ? `${e}/` : `${e} (${st.size} bytes)`;
  });
  assert.deepEqual(entries, [], `${what}: nothing may be written outside the storage root, found ${described.join(", ")} in ${dir}`);
}

before(async () => {
  [s1, s2] = await Promise.all([
    startServer({ worker: true, allowedNetworks: ["127.0.0.1/32"], retryDelayFloorSeconds: 0 }),
    startServer({ worker: true, allowedNetworks: ["127.0.0.2/32"], retryDelayFloorSeconds: 0 }),
  ]);
  o = await startOrigin();
  fs.mkdirSync(s1.filesRoot, { recursive: true });
});

after(async () => {
  await Promise.all([s1?.close(), s2?.close()]);
  await o?.close();
  await Promise.all(tinies.map((t) => t.close()));
  for (const d of outsides) fs.rmSync(d, { recursive: true, force: true });
});

const CREATE = `mutation($input: CreateJobInput!) { createJob(input: $input) { job { id } } }`;
const ADD = `mutation($id: ID!, $f: [FileInput!]!) { addFiles(jobId: $id, files: $f) { job { id progress { filesTotal } } } }`;

function tryCreate(url: string, files: { remoteUrl: string; localPath: string }[]): Promise<GqlResult> {
  return gql(url, CREATE, { input: { displayName: "ssrf", files } });
}

function sha(buf: Buffer): string {
  return createHash("sha256").update(buf).digest("hex");
}

/** The database id of a job's only (first) file: the temporary file is named after it. */
async function firstFileId(s: Server, jobId: string): Promise<string> {
  const f = await s.db.prisma.file.findFirst({ where: { jobId: uuidOf(jobId) }, orderBy: { position: "asc" } });
  assert.ok(f, "the job has a file");
  return f.id;
}

// ---------------------------------------------------------------------------------------------
// 1. Literal addresses are refused at createJob / addFiles

test("createJob/addFiles: a literal address in a refused range is BAD_USER_INPUT naming the address; nothing is created", async () => {
  const url = s1.graphqlUrl;
  const port = 9; // never connected to: refused before anything is stored
  const refused = [
    `http://127.1.2.3:${port}/x`,
    `http://[::1]:${port}/x`,
    `http://[::ffff:127.0.0.2]:${port}/x`,
    `http://0x7f.0.0.2/`,
    `http://2130706434/`, // = 127.0.0.2
    `http://10.1.2.3/`,
    `http://169.254.169.254/latest/meta-data`,
    `http://[fe80::1]/`,
    `http://0.0.0.0/`,
  ];
  const existing = await createJob(url, [{ remoteUrl: `http://127.0.0.1:${port}/ok`, localPath: "lit/ok.bin" }]);
  const jobsBefore = await s1.db.prisma.job.count();
  const filesBefore = await s1.db.prisma.file.count();
  const eventsBefore = await s1.db.prisma.jobEvent.count();
  for (const [i, remoteUrl] of refused.entries()) {
    // the address as the WHATWG parser normalises it (0x7f.0.0.2 -> 127.0.0.2, [::ffff:127.0.0.2] -> ::ffff:7f00:2)
    const address = new URL(remoteUrl).hostname.replace(/^\[|\]$/g, "");
    const c = await tryCreate(url, [{ remoteUrl, localPath: `lit/c${i}.bin` }]);
    assert.equal(codeOf(c), "BAD_USER_INPUT", `createJob ${remoteUrl}: ${JSON.stringify(c)}`);
    assert.equal(c.data?.createJob ?? null, null);
    assert.ok(c.errors![0]!.message.includes(address), `createJob ${remoteUrl}: the message names ${address}: ${c.errors![0]!.message}`);
    assert.match(c.errors![0]!.message, /remoteUrl/);

    const a = await gql(url, ADD, { id: existing, f: [{ remoteUrl, localPath: `lit/a${i}.bin` }] });
    assert.equal(codeOf(a), "BAD_USER_INPUT", `addFiles ${remoteUrl}: ${JSON.stringify(a)}`);
    assert.ok(a.errors![0]!.message.includes(address), `addFiles ${remoteUrl}: the message names ${address}: ${a.errors![0]!.message}`);
  }
  // One refused URL among allowed ones refuses the whole call.
  const mixed = await tryCreate(url, [
    { remoteUrl: `http://127.0.0.1:${port}/fine`, localPath: "lit/fine.bin" },
    { remoteUrl: `http://127.1.2.3:${port}/x`, localPath: "lit/bad.bin" },
  ]);
  assert.equal(codeOf(mixed), "BAD_USER_INPUT");
  assert.match(mixed.errors![0]!.message, /files\[1\]\.remoteUrl/);

  assert.equal(await s1.db.prisma.job.count(), jobsBefore, "no job created");
  assert.equal(await s1.db.prisma.file.count(), filesBefore, "no file added");
  assert.equal(await s1.db.prisma.jobEvent.count(), eventsBefore, "no event logged");
  assert.equal((await jobStatus(url, existing)).progress.filesTotal, 1);

  // The allowed network is accepted, at createJob and addFiles alike; so is a name (checked when connecting).
  const okJob = await createJob(url, [{ remoteUrl: `http://127.0.0.1:${port}/x`, localPath: "lit/allowed.bin" }]);
  assert.ok(okJob);
  const added = await gql(url, ADD, { id: existing, f: [{ remoteUrl: `http://localhost:${port}/x`, localPath: "lit/byname.bin" }] });
  assert.equal(added.errors, undefined, JSON.stringify(added));
  assert.equal(added.data.addFiles.job.progress.filesTotal, 2);
});

// ---------------------------------------------------------------------------------------------
// 2. Names: the check is on the address connected to

test("a name that resolves only to refused addresses (localhost) ends in ERROR DESTINATION_NOT_ALLOWED; nothing is contacted", async () => {
  const url = s2.graphqlUrl; // allows 127.0.0.2 only
  const hosts = ["127.0.0.2", "127.0.0.1", ...(IPV6 ? ["::1"] : [])];
  const [allowed, decoy4, decoy6] = await startOnSamePort(hosts);
  tinies.push(allowed!, decoy4!, ...(decoy6 ? [decoy6] : []));
  const port = allowed!.port;

  // Positive control: the same port on the allowed address works (so the refusal below is the policy).
  const good = await createJob(url, [{ remoteUrl: `http://127.0.0.2:${port}/file`, localPath: "names/good.bin" }]);
  await act(url, "resumeJob", good);
  const g = await waitForState(url, good, ["TRANSFERRED", "ERROR", "TRANSIENT_ERROR"]);
  assert.equal(g.state, "TRANSFERRED", JSON.stringify(g));
  assert.deepEqual(allowed!.requests, ["/file"]);

  const localhost = await dns.lookup("localhost", { all: true });
  assert.ok(
    localhost.every((a) => a.address !== "127.0.0.2"),
    `this test needs localhost not to resolve to 127.0.0.2: ${JSON.stringify(localhost)}`,
  );
  const id = await createJob(url, [{ remoteUrl: `http://localhost:${port}/file`, localPath: "names/localhost.bin" }]);
  await act(url, "resumeJob", id);
  const st = await waitForState(url, id, ["ERROR", "TRANSIENT_ERROR", "TRANSFERRED"]);
  assert.equal(st.state, "ERROR", JSON.stringify(st));
  assert.equal(st.error.code, "DESTINATION_NOT_ALLOWED");
  assert.equal(st.error.context, "GENERAL_QUEUE_MANAGER");
  assert.equal(st.errorCount, 1, "fatal: not retried");
  assert.equal(st.retryAt, null);
  assert.equal(st.error.file.localPath, "names/localhost.bin");
  assert.match(st.error.message, /127\.0\.0\.1|::1/, "the message names the refused address");
  assert.deepEqual(decoy4!.requests, [], "the origin on 127.0.0.1 never received a request");
  if (decoy6) assert.deepEqual(decoy6.requests, [], "the origin on ::1 never received a request");
  assert.deepEqual(allowed!.requests, ["/file"], "only the positive control reached the allowed origin");
  assert.ok(!fs.existsSync(path.join(s2.filesRoot, "names/localhost.bin")));
});

// ---------------------------------------------------------------------------------------------
// 3. Redirects are checked hop by hop

async function expectRefusedRedirect(s: Server, from: string, localPath: string, refusedAddress: RegExp): Promise<void> {
  const id = await createJob(s.graphqlUrl, [{ remoteUrl: from, localPath }]);
  await act(s.graphqlUrl, "resumeJob", id);
  const st = await waitForState(s.graphqlUrl, id, ["ERROR", "TRANSIENT_ERROR", "TRANSFERRED"]);
  assert.equal(st.state, "ERROR", JSON.stringify(st));
  assert.equal(st.error.code, "DESTINATION_NOT_ALLOWED", JSON.stringify(st.error));
  assert.equal(st.error.context, "GENERAL_QUEUE_MANAGER");
  assert.equal(st.errorCount, 1);
  assert.match(st.error.message, refusedAddress);
  assert.ok(!fs.existsSync(path.join(s.filesRoot, localPath)));
}

test("a redirect from an allowed origin to a refused literal address ends in ERROR DESTINATION_NOT_ALLOWED; the target is never contacted", async () => {
  const b = await tiny("127.0.0.2");
  const targets: [string, string, RegExp][] = [
    ["/r/plain.bin", `http://127.0.0.2:${b.port}/file`, /127\.0\.0\.2/],
    ["/r/hex.bin", `http://0x7f.0.0.2:${b.port}/file`, /127\.0\.0\.2/], // normalised by the URL parser
    ["/r/mapped.bin", `http://[::ffff:127.0.0.2]:${b.port}/file`, /::ffff:7f00:2/], // IPv4-mapped = 127.0.0.2
  ];
  if (IPV6) {
    const b6 = await tiny("::1");
    targets.push(["/r/v6.bin", `http://[::1]:${b6.port}/file`, /::1/]);
  }
  for (const [p, location, address] of targets) {
    o.fault(p, { type: "redirect", to: location });
    await expectRefusedRedirect(s1, o.urlFor(p), `redir${p}`, address);
    assert.equal(o.requests(p).length, 1, `${p}: the allowed origin answered the redirect once`);
  }
  assert.deepEqual(b.requests, [], "the refused origin on 127.0.0.2 never received a request");
  for (const t of tinies.filter((t) => t.host === "::1")) assert.deepEqual(t.requests, []);
});

test("a redirect from an allowed origin to a name resolving to a refused address (localhost) ends in ERROR DESTINATION_NOT_ALLOWED", async () => {
  // Deterministic: s2 allows only 127.0.0.2, and localhost resolves to 127.0.0.1 and/or ::1.
  const target = await tiny("127.0.0.1");
  const target6 = IPV6 ? await startTiny("::1", target.port).catch(() => null) : null;
  if (target6) tinies.push(target6);
  const a = await tiny("127.0.0.2", 0, { "/go": `http://localhost:${target.port}/file` });
  await expectRefusedRedirect(s2, `${a.url}/go`, "redir/localhost.bin", /127\.0\.0\.1|::1/);
  assert.deepEqual(a.requests, ["/go"]);
  assert.deepEqual(target.requests, [], "the origin behind localhost (127.0.0.1) never received a request");
  if (target6) assert.deepEqual(target6.requests, [], "the origin behind localhost (::1) never received a request");
});

test("a redirect to a name with both allowed and refused addresses connects only to an allowed one", async (t) => {
  // s1 allows 127.0.0.1 only. On hosts where localhost also (or first) resolves to ::1, guardedLookup
  // drops ::1 and connects to 127.0.0.1; without 127.0.0.1 in the answer this case does not apply.
  const answers = await dns.lookup("localhost", { all: true });
  if (!answers.some((x) => x.address === "127.0.0.1")) {
    t.skip(`localhost does not resolve to 127.0.0.1 here (${JSON.stringify(answers)})`);
    return;
  }
  o.add({ path: "/lh/file.bin", size: 30_000 });
  o.fault("/lh/go", { type: "redirect", to: `http://localhost:${new URL(o.url).port}/lh/file.bin` });
  const id = await createJob(s1.graphqlUrl, [{ remoteUrl: o.urlFor("/lh/go"), localPath: "lh/file.bin", sha256: o.sha256Of("/lh/file.bin") }]);
  await act(s1.graphqlUrl, "resumeJob", id);
  const st = await waitForState(s1.graphqlUrl, id, ["TRANSFERRED", "ERROR", "TRANSIENT_ERROR"]);
  assert.equal(st.state, "TRANSFERRED", JSON.stringify(st));
  assert.equal(o.requests("/lh/file.bin").length, 1);
});

// ---------------------------------------------------------------------------------------------
// 5. The allowed case, end to end

test("an allowed destination transfers end to end (127.0.0.1 with allowedNetworks 127.0.0.1/32)", async () => {
  o.add({ path: "/allowed.bin", size: 150_000 });
  const id = await createJob(s1.graphqlUrl, [{ remoteUrl: o.urlFor("/allowed.bin"), localPath: "allowed/a.bin", sha256: o.sha256Of("/allowed.bin") }]);
  await act(s1.graphqlUrl, "resumeJob", id);
  const st = await waitForState(s1.graphqlUrl, id, ["TRANSFERRED", "ERROR", "TRANSIENT_ERROR"]);
  assert.equal(st.state, "TRANSFERRED", JSON.stringify(st));
  const r = await act(s1.graphqlUrl, "completeJob", id);
  assert.equal(r.data.completeJob.job.state, "ACKNOWLEDGED", JSON.stringify(r));
  assert.equal(sha(fs.readFileSync(path.join(s1.filesRoot, "allowed/a.bin"))), o.sha256Of("/allowed.bin"));
});

// ---------------------------------------------------------------------------------------------
// 6. Where haul may write: symbolic links

test("createJob/addFiles: a localPath through an existing symlink that leaves the user's directory is BAD_USER_INPUT", async () => {
  const outside = outsideDir();
  fs.symlinkSync(outside, path.join(s1.filesRoot, "evil"));
  const jobsBefore = await s1.db.prisma.job.count();
  for (const localPath of ["evil/x.bin", "evil", "evil/deeper/x.bin"]) {
    const c = await tryCreate(s1.graphqlUrl, [{ remoteUrl: o.urlFor("/sym.bin"), localPath }]);
    assert.equal(codeOf(c), "BAD_USER_INPUT", `${localPath}: ${JSON.stringify(c)}`);
    assert.match(c.errors![0]!.message, /symbolic link/);
  }
  const existing = await createJob(s1.graphqlUrl, [{ remoteUrl: o.urlFor("/sym.bin"), localPath: "sym/ok.bin" }]);
  const a = await gql(s1.graphqlUrl, ADD, { id: existing, f: [{ remoteUrl: o.urlFor("/sym.bin"), localPath: "evil/x.bin" }] });
  assert.equal(codeOf(a), "BAD_USER_INPUT", JSON.stringify(a));
  assert.equal((await jobStatus(s1.graphqlUrl, existing)).progress.filesTotal, 1);
  assert.equal(await s1.db.prisma.job.count(), jobsBefore + 1);
  assertEmpty(outside, "createJob/addFiles through a symlink");
});

test("a symlink created after createJob but before the transfer: the worker refuses (ERROR, LOCAL_FILE), writes nothing outside", async () => {
  const outside = outsideDir();
  o.add({ path: "/later.bin", size: 40_000 });
  const id = await createJob(s1.graphqlUrl, [{ remoteUrl: o.urlFor("/later.bin"), localPath: "later/x.bin" }]);
  fs.symlinkSync(outside, path.join(s1.filesRoot, "later"));
  await act(s1.graphqlUrl, "resumeJob", id);
  const st = await waitForState(s1.graphqlUrl, id, ["ERROR", "TRANSIENT_ERROR", "TRANSFERRED"]);
  assert.equal(st.state, "ERROR", JSON.stringify(st));
  assert.equal(st.error.context, "LOCAL_FILE", JSON.stringify(st.error));
  assert.equal(st.error.code, "LOCAL_FILE_ERROR");
  assert.equal(st.error.file.localPath, "later/x.bin");
  assert.equal(o.requests("/later.bin").length, 0, "refused before connecting");
  assertEmpty(outside, "transfer through a symlinked directory");
  // completeJob after that ERROR drops the partial file; still nothing outside.
  const r = await act(s1.graphqlUrl, "completeJob", id);
  assert.equal(r.data?.completeJob?.job?.state, "ACKNOWLEDGED", JSON.stringify(r));
  assertEmpty(outside, "completeJob after the refused transfer");
});

test("a symlink planted at the temporary file's path (.<name>.<file id>.haul-part) does not make the transfer write outside", async () => {
  // The temporary file's name is predictable from the file's id (which the API exposes). A link
  // planted there before the transfer must not be followed: fs.open(tempPath, "a+") follows it.
  const outside = outsideDir();
  o.add({ path: "/tmplink.bin", size: 40_000 });
  const id = await createJob(s1.graphqlUrl, [{ remoteUrl: o.urlFor("/tmplink.bin"), localPath: "tmplink/x.bin" }]);
  const fileId = await firstFileId(s1, id);
  fs.mkdirSync(path.join(s1.filesRoot, "tmplink"), { recursive: true });
  const temp = path.join(s1.filesRoot, "tmplink", `.x.bin.${fileId}.haul-part`);
  fs.symlinkSync(path.join(outside, "stolen.bin"), temp);
  await act(s1.graphqlUrl, "resumeJob", id);
  const st = await waitForState(s1.graphqlUrl, id, ["ERROR", "TRANSIENT_ERROR", "TRANSFERRED"]);
  assertEmpty(outside, `transfer to a symlinked temporary file (job ended ${st.state} ${st.error?.code ?? ""})`);
  if (st.state === "TRANSFERRED") {
    await act(s1.graphqlUrl, "completeJob", id);
    const final = path.join(s1.filesRoot, "tmplink/x.bin");
    assert.ok(!fs.lstatSync(final).isSymbolicLink(), "the final file is not a link out of the user's directory");
  } else {
    assert.equal(st.state, "ERROR", JSON.stringify(st));
    assert.equal(st.error.context, "LOCAL_FILE");
  }
  assertEmpty(outside, "completeJob of a symlinked temporary file");
});

test("completeJob: a symlink at the final name, created after the transfer, fails with FILE_RENAME_FAILED; nothing outside", async () => {
  const outside = outsideDir();
  o.add({ path: "/fin.bin", size: 40_000 });
  const id = await createJob(s1.graphqlUrl, [{ remoteUrl: o.urlFor("/fin.bin"), localPath: "fin/x.bin" }]);
  await act(s1.graphqlUrl, "resumeJob", id);
  const st = await waitForState(s1.graphqlUrl, id, ["TRANSFERRED", "ERROR", "TRANSIENT_ERROR"]);
  assert.equal(st.state, "TRANSFERRED", JSON.stringify(st));
  const final = path.join(s1.filesRoot, "fin/x.bin");
  fs.symlinkSync(path.join(outside, "target.bin"), final);
  const r = await act(s1.graphqlUrl, "completeJob", id);
  assert.equal(codeOf(r), "FILE_RENAME_FAILED", JSON.stringify(r));
  assert.equal((await jobStatus(s1.graphqlUrl, id)).state, "TRANSFERRED", "the job stays TRANSFERRED (BITS: fix and complete again)");
  assert.ok(fs.lstatSync(final).isSymbolicLink(), "the link was left alone, not written through");
  assertEmpty(outside, "completeJob onto a symlinked final name");
});

test("completeJob: a directory swapped for a symlink after the transfer fails with FILE_RENAME_FAILED; nothing outside", async () => {
  const outside = outsideDir();
  o.add({ path: "/swap.bin", size: 40_000 });
  const id = await createJob(s1.graphqlUrl, [{ remoteUrl: o.urlFor("/swap.bin"), localPath: "swap/sub/x.bin" }]);
  await act(s1.graphqlUrl, "resumeJob", id);
  const st = await waitForState(s1.graphqlUrl, id, ["TRANSFERRED", "ERROR", "TRANSIENT_ERROR"]);
  assert.equal(st.state, "TRANSFERRED", JSON.stringify(st));
  fs.renameSync(path.join(s1.filesRoot, "swap"), path.join(s1.filesRoot, "swap-away"));
  fs.symlinkSync(outside, path.join(s1.filesRoot, "swap"));
  const r = await act(s1.graphqlUrl, "completeJob", id);
  assert.equal(codeOf(r), "FILE_RENAME_FAILED", JSON.stringify(r));
  assertEmpty(outside, "completeJob through a symlinked directory");
});

// ---------------------------------------------------------------------------------------------
// 7. Absolute paths, "..", NUL (breadth is the fuzz test's job)

test("absolute, '..' and NUL localPaths are BAD_USER_INPUT; nothing created", async () => {
  const outside = outsideDir();
  const jobsBefore = await s1.db.prisma.job.count();
  const bad = [path.join(outside, "abs.bin"), "/etc/haul.bin", "../escape.bin", "a/../../escape.bin", "..", "a/x\0.bin", "\0"];
  for (const localPath of bad) {
    const c = await tryCreate(s1.graphqlUrl, [{ remoteUrl: o.urlFor("/p.bin"), localPath }]);
    assert.equal(codeOf(c), "BAD_USER_INPUT", `${JSON.stringify(localPath)}: ${JSON.stringify(c)}`);
  }
  assert.equal(await s1.db.prisma.job.count(), jobsBefore);
  assertEmpty(outside, "bad localPaths");
  assert.ok(!fs.existsSync(path.join(s1.storageRoot, "escape.bin")));
});
