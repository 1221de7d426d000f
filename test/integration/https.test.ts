/**
 * https end to end, in a haul child process that trusts a test CA (NODE_EXTRA_CA_CERTS, as an operator
 * would configure it): a download over TLS (node:https), a plain-http URL that redirects to https
 * (the raw HTTP/1.1 client hands over to node:https mid-redirect), with Range resume after a reset,
 * and a server whose certificate nobody trusts: ERROR with TLS_ERROR, not retried. Certificates are
 * made with the openssl CLI at test time (valid one day, for 127.0.0.1 only).
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import http from "node:http";
import https from "node:https";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import type { AddressInfo } from "node:net";
import { startHaulChild, type HaulChild } from "../helpers/child.js";
import { createTestDatabase, type TestDatabase } from "../helpers/db.js";
import { act, createJob, waitForState } from "../helpers/jobs.js";

// Debian ships openssl with the base system; where it is missing these tests say so and skip.
const openssl = spawnSync("openssl", ["version"], { stdio: "pipe" }).status === 0;
const skip = openssl ? false : "the openssl CLI is not installed (apt-get install openssl)";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "haul-tls-"));
const storageRoot = fs.mkdtempSync(path.join(os.tmpdir(), "haul-tls-files-"));
let database: TestDatabase;
let child: HaulChild;
let trusted: https.Server;
let untrusted: https.Server;
let plain: http.Server;
let resetOnce = true;
const requests: { path: string; range: string | undefined }[] = [];

const SIZE = 3_000_000;
const body = Buffer.alloc(SIZE);
for (let i = 0; i < SIZE; i += 4) body.writeUInt32LE((i * 2654435761) >>> 0, i);
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

function selfSigned(name: string): { key: string; cert: string } {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.pem`);
  const r = spawnSync(
    "openssl",
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
    { stdio: "pipe" },
  );
  assert.equal(r.status, 0, `openssl: ${r.stderr}`);
  return { key, cert };
}

/** Serves `body` at any path with Range support; the first GET of /reset.bin from byte 0 is cut after 1 MB. */
function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  requests.push({ path: req.url ?? "", range: req.headers.range });
  const etag = `"${sha(body).slice(0, 16)}"`;
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
  const start = m && (!req.headers["if-range"] || req.headers["if-range"] === etag) ? Number(m[1]) : 0;
  res.setHeader("etag", etag);
  res.setHeader("accept-ranges", "bytes");
  if (start > 0) {
    res.statusCode = 206;
    res.setHeader("content-range", `bytes ${start}-${SIZE - 1}/${SIZE}`);
  }
  res.setHeader("content-length", String(SIZE - start));
  if (req.url === "/reset.bin" && resetOnce && start === 0) {
    resetOnce = false;
    res.write(body.subarray(0, 1_000_000), () => setTimeout(() => res.socket?.destroy(), 50)); // TLS: no RST, an abrupt close
    return;
  }
  res.end(body.subarray(start));
}

const listen = (s: http.Server | https.Server) => new Promise<number>((r) => s.listen(0, "127.0.0.1", () => r((s.address() as AddressInfo).port)));

let trustedPort = 0;
let untrustedPort = 0;
let plainPort = 0;

before(async () => {
  if (skip) return;
  const ca = selfSigned("trusted");
  const other = selfSigned("untrusted");
  trusted = https.createServer({ key: fs.readFileSync(ca.key), cert: fs.readFileSync(ca.cert) }, handler);
  untrusted = https.createServer({ key: fs.readFileSync(other.key), cert: fs.readFileSync(other.cert) }, handler);
  trustedPort = await listen(trusted);
  untrustedPort = await listen(untrusted);
  plain = http.createServer((req, res) => {
    res.statusCode = 302;
    res.setHeader("location", `https://127.0.0.1:${trustedPort}${req.url === "/to-reset" ? "/reset.bin" : "/via-redirect.bin"}`);
    res.end();
  });
  plainPort = await listen(plain);
  database = await createTestDatabase();
  child = await startHaulChild({ databaseUrl: database.url, storageRoot, env: { NODE_EXTRA_CA_CERTS: ca.cert, HAUL_RETRY_DELAY_FLOOR: "0" } });
});

after(async () => {
  await child?.stop();
  await database?.drop();
  for (const s of [trusted, untrusted, plain]) s?.close();
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(storageRoot, { recursive: true, force: true });
});

test("https: a direct download, and an http URL redirected to https, both verified and completed", { skip }, async () => {
  const expected = sha(body);
  const id = await createJob(child.graphqlUrl, [
    { remoteUrl: `https://127.0.0.1:${trustedPort}/direct.bin`, localPath: "tls/direct.bin", sha256: expected },
    { remoteUrl: `http://127.0.0.1:${plainPort}/start`, localPath: "tls/redirected.bin", sha256: expected },
  ]);
  await act(child.graphqlUrl, "resumeJob", id);
  const done = await waitForState(child.graphqlUrl, id, ["TRANSFERRED", "ERROR", "TRANSIENT_ERROR"], 30_000);
  assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
  const r = await act(child.graphqlUrl, "completeJob", id);
  assert.equal(r.data.completeJob.job.state, "ACKNOWLEDGED");
  for (const f of ["direct.bin", "redirected.bin"]) assert.equal(sha(fs.readFileSync(path.join(storageRoot, "local", "tls", f))), expected, f);
  assert.ok(requests.some((x) => x.path === "/via-redirect.bin"), "the redirect target was fetched over https");
});

test("https: a reset mid-body resumes with Range over TLS", { skip }, async () => {
  const id = await createJob(child.graphqlUrl, [{ remoteUrl: `http://127.0.0.1:${plainPort}/to-reset`, localPath: "tls/reset.bin", sha256: sha(body) }], { minimumRetryDelay: 1 });
  await act(child.graphqlUrl, "resumeJob", id);
  const done = await waitForState(child.graphqlUrl, id, ["TRANSFERRED", "ERROR"], 30_000);
  assert.equal(done.state, "TRANSFERRED", JSON.stringify(done));
  const ranged = requests.filter((x) => x.path === "/reset.bin" && x.range);
  assert.ok(ranged.length >= 1 && Number(/\d+/.exec(ranged[0]!.range!)![0]) > 0, `resumed with a Range: ${JSON.stringify(requests.filter((x) => x.path === "/reset.bin"))}`);
});

test("https: a certificate nobody trusts is ERROR TLS_ERROR (fatal, not retried)", { skip }, async () => {
  const id = await createJob(child.graphqlUrl, [{ remoteUrl: `https://127.0.0.1:${untrustedPort}/x.bin`, localPath: "tls/x.bin" }]);
  await act(child.graphqlUrl, "resumeJob", id);
  const st = await waitForState(child.graphqlUrl, id, ["ERROR", "TRANSIENT_ERROR", "TRANSFERRED"], 30_000);
  assert.equal(st.state, "ERROR", JSON.stringify(st));
  assert.equal(st.error.code, "TLS_ERROR");
  assert.equal(st.error.context, "GENERAL_TRANSPORT");
});
