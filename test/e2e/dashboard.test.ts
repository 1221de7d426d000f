// The web dashboard end to end: a real haul server (with its worker) serving web/dist at /, a
// rate-limited test origin, and Debian's headless Chromium driven by playwright-core. A job created
// through the API appears without a reload; Resume moves it to TRANSFERRED with the bar at 100%;
// Complete acknowledges it; its page shows the files and the whole event history. A screenshot of
// the list with a job mid-transfer is saved as a screenshot (HAUL_E2E_SHOTS=<dir>: also the job page).
//
// Also here, without a browser: serveStatic (src/server/static.ts) on its own.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { AddressInfo } from "node:net";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { ok, startServer } from "../helpers/server.js";
import { startOrigin } from "../helpers/origin.js";
import { DASHBOARD_DIST, serveStatic } from "../../src/server/static.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const CHROMIUM = "/usr/bin/chromium";
// The screenshot goes to a temporary directory, so a test run leaves the work tree clean;
// HAUL_UPDATE_SCREENSHOT=1 writes it to docs/dashboard.png (the README's picture) instead.
const SCREENSHOT = process.env.HAUL_UPDATE_SCREENSHOT === "1"
  ? path.join(ROOT, "docs/dashboard.png")
  : path.join(fs.mkdtempSync(path.join(os.tmpdir(), "haul-e2e-")), "dashboard.png");

const browserSkip =
  !fs.existsSync(CHROMIUM) && !process.env.CI
    ? `${CHROMIUM} is absent: install Debian's chromium (apt-get install -y chromium) to run the dashboard's browser test (CI always runs it)`
    : false;

/** Polls `probe` until it returns something truthy; fails after `ms` naming `what` and the last value seen. */
async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err instanceof Error ? err.message : err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Newest modification time under a path (a file or a directory tree). */
function newestMtime(p: string): number {
  const st = fs.statSync(p, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...fs.readdirSync(p).map((n) => newestMtime(path.join(p, n))));
}

/** Builds web/dist when it is missing or older than its sources (npm install normally builds it). */
function ensureDashboardBuilt(): void {
  const built = newestMtime(path.join(DASHBOARD_DIST, "index.html"));
  const sources = Math.max(...["web/src", "web/public", "web/index.html", "web/vite.config.ts"].map((p) => newestMtime(path.join(ROOT, p))));
  if (built && built >= sources) return;
  const r = spawnSync(process.execPath, [path.join(ROOT, "node_modules/vite/bin/vite.js"), "build", "--config", "web/vite.config.ts"], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 120_000,
  });
  assert.equal(r.status, 0, `vite build failed:\n${r.stdout}\n${r.stderr}`);
}

const text = async (page: Page, testId: string) => (await page.getByTestId(testId).first().textContent({ timeout: 1000 }))?.trim() ?? null;
const percent = async (page: Page, testId: string) => {
  const v = await page.getByTestId(testId).first().getAttribute("data-percent", { timeout: 1000 });
  return v === null || v === "" ? null : Number(v);
};

const CREATE = `mutation($input: CreateJobInput!) { createJob(input: $input) { job { id state } } }`;

test("dashboard: sign in, a job appears live, Resume to TRANSFERRED, Complete, history", { skip: browserSkip, timeout: 150_000 }, async () => {
  ensureDashboardBuilt();
  const SIZE = 8 * 1024 * 1024;
  const origin = await startOrigin([
    { path: "/datasets/imagery-2026-11.tar", size: SIZE },
    { path: "/nightly/backup.tar.zst", size: 3 * 1024 * 1024 },
  ]);
  origin.fault("/datasets/imagery-2026-11.tar", { type: "rate", bytesPerSecond: 1024 * 1024 }); // about 8 s: the bar is seen moving
  const s = await startServer({ worker: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "haul-chromium-"));
  const problems: string[] = [];
  let context: BrowserContext | null = null;
  try {
    // The dashboard is served by the API server itself.
    const home = await fetch(`${s.url}/`, { redirect: "manual" });
    assert.equal(home.status, 200, "GET / serves the dashboard (serveStatic(DASHBOARD_DIST) in src/server/app.ts)");
    assert.match(home.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(await home.text(), /<div id="root">/);

    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      viewport: { width: 1360, height: 720 },
      deviceScaleFactor: 1,
      colorScheme: "light",
      locale: "en-GB",
      timezoneId: "UTC",
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(15_000);
    page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
    page.on("console", (m) => {
      // The refused token's request is logged by the browser as a failed 401: expected.
      if (m.type() === "error" && !/401|Unauthorized/i.test(m.text())) problems.push(`console: ${m.text()}`);
    });

    // 1. The token prompt: a wrong token is refused, the USER token is accepted.
    await page.goto(`${s.url}/`);
    await page.getByTestId("token-input").fill("haul_this-is-not-a-valid-token-at-all-000000000");
    await page.getByTestId("token-submit").click();
    await page.getByTestId("token-notice").waitFor({ state: "visible" });
    assert.match((await text(page, "token-notice")) ?? "", /UNAUTHENTICATED/);
    await page.getByTestId("token-input").fill(s.userToken);
    await page.getByTestId("token-submit").click();
    await until("the viewer in the header", async () => (await text(page, "viewer"))?.startsWith("local"));
    await page.getByTestId("job-table").waitFor({ state: "visible" });
    // Live: the list's subscriptions (jobStateChanged, jobProgress) are registered on the server.
    await until("the dashboard's subscriptions", async () => s.app.feed.subscriberCount >= 1 && s.app.feed.progress.size >= 1);
    assert.equal(await page.evaluate(() => localStorage.getItem("haul.token")), s.userToken, "the token is kept in localStorage");

    // 2. Jobs created through the API appear without a reload.
    const created = await ok<{ createJob: { job: { id: string; state: string } } }>(
      s.graphqlUrl,
      CREATE,
      {
        input: {
          displayName: "imagery-2026-11.tar",
          priority: "HIGH",
          files: [{ remoteUrl: origin.urlFor("/datasets/imagery-2026-11.tar"), localPath: "datasets/imagery-2026-11.tar" }],
        },
      },
      s.userToken,
    );
    const id = created.createJob.job.id;
    await page.getByTestId(`job-row-${id}`).waitFor({ state: "visible", timeout: 10_000 });
    assert.equal(await text(page, `state-${id}`), "SUSPENDED");
    assert.equal(await text(page, `priority-${id}`), "high");
    // Two more, for a list worth a screenshot: one left suspended, one whose URL is a 404 (ERROR).
    const other = await ok(s.graphqlUrl, CREATE, {
      input: { displayName: "nightly backup", files: [{ remoteUrl: origin.urlFor("/nightly/backup.tar.zst"), localPath: "backup/nightly.tar.zst" }] },
    }, s.userToken);
    const broken = await ok(s.graphqlUrl, CREATE, {
      input: { displayName: "release notes (moved)", priority: "LOW", files: [{ remoteUrl: origin.urlFor("/releases/notes.pdf"), localPath: "docs/notes.pdf" }] },
    }, s.userToken);
    const otherId: string = other.createJob.job.id;
    const brokenId: string = broken.createJob.job.id;
    await page.getByTestId(`job-row-${otherId}`).waitFor({ state: "visible", timeout: 10_000 });
    await page.getByTestId(`job-row-${brokenId}`).waitFor({ state: "visible", timeout: 10_000 });
    await page.getByTestId(`btn-resume-${brokenId}`).click();
    await until("the 404 job to reach ERROR", async () => (await text(page, `state-${brokenId}`)) === "ERROR");
    await until("the 404 job's error code", async () => (await text(page, `error-${brokenId}`)) === "HTTP_404");

    // 3. Resume: the bar moves (screenshot mid-transfer), the badge reaches TRANSFERRED, the bar 100%.
    await page.getByTestId(`btn-resume-${id}`).click();
    await until("TRANSFERRING", async () => (await text(page, `state-${id}`)) === "TRANSFERRING", 15_000);
    const mid = await until("the bar between 15% and 85%", async () => {
      const p = await percent(page, `progress-${id}`);
      return p !== null && p >= 15 && p <= 85 ? p : null;
    }, 20_000);
    const table = await page.getByTestId("job-table").boundingBox();
    await page.screenshot({ path: SCREENSHOT, clip: { x: 0, y: 0, width: 1360, height: Math.min(720, Math.ceil((table?.y ?? 0) + (table?.height ?? 600) + 24)) } });
    assert.ok(fs.statSync(SCREENSHOT).size > 10_000, "the screenshot was written");
    await until("TRANSFERRED", async () => (await text(page, `state-${id}`)) === "TRANSFERRED", 30_000);
    await until("the bar at 100%", async () => (await percent(page, `progress-${id}`)) === 100, 10_000);
    assert.ok(mid < 100);

    // 4. Complete: ACKNOWLEDGED leaves the default (unfinished) filter; "all states" shows it.
    await page.getByTestId(`btn-complete-${id}`).click();
    await page.getByTestId(`job-row-${id}`).waitFor({ state: "detached", timeout: 10_000 });
    await page.getByTestId("filter-all-states").click();
    await page.getByTestId(`job-row-${id}`).waitFor({ state: "visible", timeout: 10_000 });
    await until("ACKNOWLEDGED in the list", async () => (await text(page, `state-${id}`)) === "ACKNOWLEDGED");
    assert.ok(fs.existsSync(path.join(s.filesRoot, "datasets/imagery-2026-11.tar")), "the file is under its final name");
    assert.equal(fs.statSync(path.join(s.filesRoot, "datasets/imagery-2026-11.tar")).size, SIZE);

    // 5. The job page: state, files, and the whole history replayed from cursor 0.
    await page.getByTestId(`job-link-${id}`).click();
    await page.getByTestId(`job-page-${id}`).waitFor({ state: "visible" });
    if (process.env.HAUL_E2E_SHOTS) await page.waitForTimeout(1000).then(() => page.screenshot({ path: path.join(process.env.HAUL_E2E_SHOTS!, "job-page.png"), fullPage: true }));
    assert.equal(await text(page, `state-${id}`), "ACKNOWLEDGED");
    const history = await until("the history up to ACKNOWLEDGED", async () => {
      const states = await page.locator('[data-testid="history"] tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute("data-state")));
      return states.includes("ACKNOWLEDGED") ? states : null;
    });
    const expected = ["SUSPENDED", "QUEUED", "CONNECTING", "TRANSFERRING", "TRANSFERRED", "ACKNOWLEDGED"];
    let at = -1;
    for (const st of expected) {
      const next = history.indexOf(st, at + 1);
      assert.ok(next > at, `history ${JSON.stringify(history)} has ${expected.join(" -> ")} in order`);
      at = next;
    }
    const fileRows = page.locator('[data-testid="file-table"] tbody tr');
    assert.equal(await fileRows.count(), 1);
    assert.match((await fileRows.first().textContent()) ?? "", /completed/);
    assert.match((await fileRows.first().textContent()) ?? "", /datasets\/imagery-2026-11\.tar/);
    const fileBar = await fileRows.first().locator('[data-testid^="file-progress-"]').getAttribute("data-percent");
    assert.equal(fileBar, "100");
    // Buttons are off on a finished job.
    assert.equal(await page.getByTestId(`btn-resume-${id}`).isDisabled(), true);

    // 6. Back to the list (client-side), then sign out: the prompt comes back and the token is gone.
    await page.getByTestId("back-to-list").click();
    await page.getByTestId(`job-row-${otherId}`).waitFor({ state: "visible" });
    await page.getByTestId("sign-out").click();
    await page.getByTestId("token-input").waitFor({ state: "visible" });
    assert.equal(await page.evaluate(() => localStorage.getItem("haul.token")), null);

    // 7. An admin sees only its own jobs until "all users" is ticked; then everyone's, with owners.
    await page.getByTestId("token-input").fill(s.adminToken);
    await page.getByTestId("token-submit").click();
    await until("the admin in the header", async () => (await text(page, "viewer"))?.startsWith("admin"));
    await page.getByTestId("no-jobs").waitFor({ state: "visible" });
    await page.getByTestId("filter-all-users").check();
    await page.getByTestId(`job-row-${otherId}`).waitFor({ state: "visible" });
    assert.match((await page.getByTestId(`job-row-${otherId}`).textContent()) ?? "", /local/);

    assert.deepEqual(problems, [], "no page errors, no console errors (CSP included)");
  } finally {
    await context?.close().catch(() => {});
    await s.close();
    await origin.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
});

test("serveStatic: files, index fallback, caching, traversal, 503 when not built", async () => {
  const dist = fs.mkdtempSync(path.join(os.tmpdir(), "haul-dist-"));
  fs.mkdirSync(path.join(dist, "assets"));
  fs.writeFileSync(path.join(dist, "index.html"), "<!doctype html><div id=root></div>");
  fs.writeFileSync(path.join(dist, "assets/index-AbCd1234.js"), "console.log(1)");
  fs.writeFileSync(path.join(dist, "favicon.svg"), "<svg/>");
  fs.writeFileSync(path.join(dist, ".secret"), "no");
  const outside = path.join(path.dirname(dist), `${path.basename(dist)}-outside.txt`);
  fs.writeFileSync(outside, "outside");
  const missing = path.join(dist, "nope");
  const handlers = { built: serveStatic(dist), missing: serveStatic(missing) };
  let which: keyof typeof handlers = "built";
  const server = http.createServer((req, res) => {
    if (!handlers[which](req, res)) res.writeHead(418, { "content-type": "text/plain" }).end("passed on\n");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // Raw requests (fetch would normalise ".." away).
  const get = (p: string, headers: Record<string, string> = {}, method = "GET") =>
    new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const req = http.request(`${base}/`, { method, path: p, headers }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on("error", reject);
      req.end();
    });
  try {
    let r = await get("/");
    assert.equal(r.status, 200);
    assert.match(String(r.headers["content-type"]), /^text\/html; charset=utf-8/);
    assert.equal(r.headers["cache-control"], "no-cache");
    assert.match(String(r.headers["content-security-policy"]), /default-src 'self'/);
    assert.match(r.body, /id=root/);

    r = await get("/assets/index-AbCd1234.js");
    assert.equal(r.status, 200);
    assert.match(String(r.headers["content-type"]), /^text\/javascript/);
    assert.equal(r.headers["cache-control"], "public, max-age=31536000, immutable");
    const etag = String(r.headers.etag);
    assert.equal((await get("/assets/index-AbCd1234.js", { "if-none-match": etag })).status, 304);

    r = await get("/favicon.svg", {}, "HEAD");
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "image/svg+xml");
    assert.equal(r.body, "");

    // Client-side routes get the app; API paths, other methods and unknown files are passed on.
    assert.equal((await get("/jobs/abc", { accept: "text/html,application/xhtml+xml" })).status, 200);
    assert.equal((await get("/jobs/abc", { accept: "application/json" })).status, 418);
    assert.equal((await get("/graphql", { accept: "text/html" })).status, 418);
    assert.equal((await get("/graphql?query=%7B__typename%7D")).status, 418);
    assert.equal((await get("/healthz")).status, 418);
    assert.equal((await get("/metrics", { accept: "text/html" })).status, 418);
    assert.equal((await get("/", {}, "POST")).status, 418);
    assert.equal((await get("/robots.txt")).status, 418);
    assert.equal((await get("/assets/missing-12345678.js")).status, 404);

    // No way out of the directory, no dotfiles.
    for (const p of [
      `/../${path.basename(outside)}`,
      `/assets/../../${path.basename(outside)}`,
      `/%2e%2e/${path.basename(outside)}`,
      `/assets/%2e%2e%2f%2e%2e%2f${path.basename(outside)}`,
      "/..%2f..%2f..%2f..%2fetc%2fpasswd",
      "/.secret",
      "/%2esecret",
      "/assets/..%5c..%5cetc%5cpasswd",
      "/index.html%00.js",
    ]) {
      const res = await get(p, { accept: "text/html" });
      assert.ok(!res.body.includes("outside") && !res.body.includes("root:") && res.body !== "no", `${p} must not leak a file (got ${res.status} ${res.body.slice(0, 40)})`);
      assert.ok(res.status !== 200 || /id=root/.test(res.body), `${p}: only the app itself may answer 200`);
    }

    which = "missing";
    r = await get("/");
    assert.equal(r.status, 503);
    assert.match(r.body, /dashboard not built: run npm run build:web/);
    assert.equal((await get("/graphql")).status, 418);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
    fs.rmSync(dist, { recursive: true, force: true });
    fs.rmSync(outside, { force: true });
  }
});
