// Self-test of the HTTP origin fixture (test/helpers/origin.ts). Needs no database.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { generateContent, startOrigin, type Origin } from "../helpers/origin.js";

interface Got {
  status: number | null;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** Set when the request or the response failed (reset, premature close, abort). */
  error: (Error & { code?: string }) | null;
  /** The response ended normally (all of Content-Length received). */
  complete: boolean;
}

/** One raw request, no redirects followed; resolves (never rejects) with whatever arrived. */
function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; agent?: http.Agent | false; timeoutMs?: number; onSocket?: (req: http.ClientRequest) => void } = {},
): Promise<Got> {
  return new Promise((resolve) => {
    const got: Got = { status: null, headers: {}, body: Buffer.alloc(0), error: null, complete: false };
    const parts: Buffer[] = [];
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      got.body = Buffer.concat(parts);
      resolve(got);
    };
    const req = http.request(url, { method: opts.method ?? "GET", headers: opts.headers, agent: opts.agent ?? false }, (res) => {
      got.status = res.statusCode ?? null;
      got.headers = res.headers;
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => {
        got.complete = true;
        settle();
      });
      res.on("error", (e) => {
        got.error ??= e;
        settle();
      });
      res.on("close", settle);
    });
    req.on("error", (e) => {
      got.error ??= e;
      settle();
    });
    if (opts.timeoutMs !== undefined) {
      req.setTimeout(opts.timeoutMs, () => req.destroy(Object.assign(new Error("client timeout"), { code: "CLIENT_TIMEOUT" })));
    }
    opts.onSocket?.(req);
    req.end();
  });
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");
const KiB = 1024;
const MiB = 1024 * 1024;

describe("origin fixture", () => {
  let o: Origin;
  before(async () => {
    o = await startOrigin([
      { path: "/a.bin", size: 300 * KiB + 123 },
      { path: "/empty", size: 0 },
      { path: "/small", size: 10, seed: "s" },
    ]);
  });
  after(() => o.close());

  test("content is deterministic, offset-dependent, and generated the same way everywhere", () => {
    const a = o.contentOf("/a.bin");
    assert.equal(a.length, 300 * KiB + 123);
    assert.deepEqual(o.contentOf("/a.bin"), a);
    assert.equal(o.sha256Of("/a.bin"), sha(a));
    // The 64 KiB blocks differ from one another (the offset is mixed in).
    const blocks = new Set([0, 1, 2, 3].map((k) => a.subarray(k * 64 * KiB, (k + 1) * 64 * KiB).toString("hex")));
    assert.equal(blocks.size, 4);
    // Any range generates the same bytes as the full content; size only truncates.
    assert.deepEqual(generateContent("/a.bin", 65_000, 200_000), a.subarray(65_000, 200_000));
    assert.deepEqual(generateContent("/a.bin", 0, 10 * MiB).subarray(0, a.length), a);
    // Another seed, other bytes.
    assert.notDeepEqual(generateContent("other", 0, 1024), a.subarray(0, 1024));
    assert.equal(o.contentOf("/empty").length, 0);
    assert.equal(o.sha256Of("/empty"), sha(Buffer.alloc(0)));
  });

  test("full GET: 200, whole content, validators, Accept-Ranges", async () => {
    const r = await request(o.urlFor("/a.bin"));
    assert.equal(r.status, 200);
    assert.ok(r.complete);
    assert.equal(r.headers["content-length"], String(300 * KiB + 123));
    assert.equal(r.headers["accept-ranges"], "bytes");
    assert.match(r.headers["etag"] ?? "", /^"[0-9a-f]+"$/);
    assert.ok(!Number.isNaN(Date.parse(r.headers["last-modified"] ?? "")));
    assert.deepEqual(r.body, o.contentOf("/a.bin"));
    assert.equal(sha(r.body), o.sha256Of("/a.bin"));
  });

  test("ranged GET: bytes=N-M, bytes=N-, suffix, clamped end", async () => {
    const a = o.contentOf("/a.bin");
    const size = a.length;
    const cases: [string, number, number][] = [
      ["bytes=100-199", 100, 200],
      ["bytes=70000-", 70_000, size],
      ["bytes=-500", size - 500, size],
      ["bytes=0-99999999", 0, size],
      [`bytes=${size - 1}-`, size - 1, size],
    ];
    for (const [range, s, e] of cases) {
      const r = await request(o.urlFor("/a.bin"), { headers: { Range: range } });
      assert.equal(r.status, 206, range);
      assert.equal(r.headers["content-range"], `bytes ${s}-${e - 1}/${size}`, range);
      assert.equal(r.headers["content-length"], String(e - s), range);
      assert.deepEqual(r.body, a.subarray(s, e), range);
    }
    // Multi-range and malformed ranges: the whole body, 200.
    for (const range of ["bytes=0-1,5-6", "bytes=9-3", "items=0-1", "bytes=abc"]) {
      const r = await request(o.urlFor("/a.bin"), { headers: { Range: range } });
      assert.equal(r.status, 200, range);
      assert.equal(r.body.length, size, range);
    }
  });

  test("unsatisfiable range: 416 with Content-Range bytes */size; zero-byte file", async () => {
    const size = 300 * KiB + 123;
    for (const range of [`bytes=${size}-`, `bytes=${size + 10}-${size + 20}`, "bytes=-0"]) {
      const r = await request(o.urlFor("/a.bin"), { headers: { Range: range } });
      assert.equal(r.status, 416, range);
      assert.equal(r.headers["content-range"], `bytes */${size}`, range);
      assert.equal(r.body.length, 0);
    }
    const e = await request(o.urlFor("/empty"));
    assert.equal(e.status, 200);
    assert.ok(e.complete);
    assert.equal(e.headers["content-length"], "0");
    assert.equal(e.body.length, 0);
    const e2 = await request(o.urlFor("/empty"), { headers: { Range: "bytes=0-" } });
    assert.equal(e2.status, 416);
    assert.equal(e2.headers["content-range"], "bytes */0");
    const h = await request(o.urlFor("/empty"), { method: "HEAD" });
    assert.equal(h.status, 200);
    assert.equal(h.headers["content-length"], "0");
  });

  test("HEAD: same headers as GET, no body; Range ignored on HEAD", async () => {
    const g = await request(o.urlFor("/a.bin"));
    const h = await request(o.urlFor("/a.bin"), { method: "HEAD" });
    assert.equal(h.status, 200);
    assert.ok(h.complete);
    assert.equal(h.body.length, 0);
    for (const k of ["content-length", "etag", "last-modified", "accept-ranges", "content-type"]) {
      assert.equal(h.headers[k], g.headers[k], k);
    }
    const hr = await request(o.urlFor("/a.bin"), { method: "HEAD", headers: { Range: "bytes=0-9" } });
    assert.equal(hr.status, 200);
    assert.equal(hr.headers["content-length"], g.headers["content-length"]);
  });

  test("unknown path 404; other methods 405; query string ignored", async () => {
    const r = await request(o.urlFor("/nope"));
    assert.equal(r.status, 404);
    assert.equal((await request(o.urlFor("/a.bin"), { method: "POST" })).status, 405);
    const q = await request(o.urlFor("/small?X-Amz-Signature=abc"));
    assert.equal(q.status, 200);
    assert.deepEqual(q.body, o.contentOf("/small"));
  });

  test("keep-alive: consecutive requests reuse one connection", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const ports = new Set<number>();
      for (let i = 0; i < 3; i++) {
        const r = await request(o.urlFor("/small"), {
          agent,
          onSocket: (req) => req.on("socket", (s) => s.once("connect", () => ports.add(s.localPort ?? -1))),
        });
        assert.equal(r.status, 200);
        assert.equal(r.headers["connection"], "keep-alive");
      }
      assert.equal(ports.size, 1, "one TCP connection for three requests");
    } finally {
      agent.destroy();
    }
  });
});

describe("validators: If-Range and preconditions", () => {
  let o: Origin;
  before(async () => {
    o = await startOrigin([{ path: "/f", size: 100 * KiB }]);
  });
  after(() => o.close());

  test("If-Range: matching ETag or date honours Range; after change() it is ignored (200, new content)", async () => {
    const first = await request(o.urlFor("/f"));
    const etag = first.headers["etag"]!;
    const lm = first.headers["last-modified"]!;
    const v1 = o.contentOf("/f");

    let r = await request(o.urlFor("/f"), { headers: { Range: "bytes=1000-", "If-Range": etag } });
    assert.equal(r.status, 206);
    assert.deepEqual(r.body, v1.subarray(1000));
    r = await request(o.urlFor("/f"), { headers: { Range: "bytes=1000-", "If-Range": lm } });
    assert.equal(r.status, 206);
    // A weak tag never matches (strong comparison).
    r = await request(o.urlFor("/f"), { headers: { Range: "bytes=1000-", "If-Range": `W/${etag}` } });
    assert.equal(r.status, 200);
    assert.equal(r.body.length, v1.length);

    o.change("/f", { seed: "version 2" });
    const v2 = o.contentOf("/f");
    assert.notDeepEqual(v2, v1);
    const head = await request(o.urlFor("/f"), { method: "HEAD" });
    assert.notEqual(head.headers["etag"], etag);
    assert.notEqual(head.headers["last-modified"], lm);

    for (const validator of [etag, lm]) {
      r = await request(o.urlFor("/f"), { headers: { Range: "bytes=1000-", "If-Range": validator } });
      assert.equal(r.status, 200, validator);
      assert.equal(r.headers["content-range"], undefined);
      assert.deepEqual(r.body, v2, validator);
    }
    // If-Range failing beats an unsatisfiable Range: still 200.
    r = await request(o.urlFor("/f"), { headers: { Range: "bytes=999999999-", "If-Range": etag } });
    assert.equal(r.status, 200);
    // The new validators match again.
    r = await request(o.urlFor("/f"), { headers: { Range: "bytes=5-9", "If-Range": head.headers["etag"]! } });
    assert.equal(r.status, 206);
    assert.deepEqual(r.body, v2.subarray(5, 10));
  });

  test("explicit validators: etag null / lastModified null / fixed values survive a seed change", async () => {
    const lm = new Date("2023-05-06T07:08:09Z");
    o.add({ path: "/g", size: 1000, etag: '"fixed"', lastModified: lm });
    let h = await request(o.urlFor("/g"), { method: "HEAD" });
    assert.equal(h.headers["etag"], '"fixed"');
    assert.equal(h.headers["last-modified"], lm.toUTCString());
    o.change("/g", { seed: "other" }); // content changes, validators lie (a broken origin)
    h = await request(o.urlFor("/g"), { method: "HEAD" });
    assert.equal(h.headers["etag"], '"fixed"');

    o.change("/g", { etag: null, lastModified: null });
    h = await request(o.urlFor("/g"), { method: "HEAD" });
    assert.equal(h.headers["etag"], undefined);
    assert.equal(h.headers["last-modified"], undefined);
    // Without validators If-Range can never match.
    const r = await request(o.urlFor("/g"), { headers: { Range: "bytes=10-", "If-Range": '"fixed"' } });
    assert.equal(r.status, 200);
    assert.equal(r.body.length, 1000);
    // change() of size: a longer file with the same seed extends the content.
    const before = o.contentOf("/g");
    o.change("/g", { size: 2000 });
    assert.deepEqual(o.contentOf("/g").subarray(0, 1000), before);
    assert.throws(() => o.change("/missing", { size: 1 }));
  });

  test("If-Match (412) and If-None-Match (304)", async () => {
    const etag = (await request(o.urlFor("/f"), { method: "HEAD" })).headers["etag"]!;
    assert.equal((await request(o.urlFor("/f"), { headers: { "If-Match": '"nope"' } })).status, 412);
    const ok = await request(o.urlFor("/f"), { headers: { "If-Match": etag, Range: "bytes=0-0" } });
    assert.equal(ok.status, 206);
    const nm = await request(o.urlFor("/f"), { headers: { "If-None-Match": etag } });
    assert.equal(nm.status, 304);
    assert.equal(nm.body.length, 0);
  });
});

describe("faults", () => {
  let o: Origin;
  const SIZE = 2 * MiB + 77;
  before(async () => {
    o = await startOrigin([{ path: "/x", size: SIZE }]);
  });
  after(() => o.close());

  test("noHead: 405 by default (Allow: GET), configurable (403); GET unaffected", async () => {
    o.fault("/x", { type: "noHead" });
    let h = await request(o.urlFor("/x"), { method: "HEAD" });
    assert.equal(h.status, 405);
    assert.equal(h.headers["allow"], "GET");
    o.fault("/x", { type: "noHead", status: 403 });
    h = await request(o.urlFor("/x"), { method: "HEAD" });
    assert.equal(h.status, 403);
    const g = await request(o.urlFor("/x"), { headers: { Range: "bytes=0-9" } });
    assert.equal(g.status, 206);
    o.clearFaults("/x");
    assert.equal((await request(o.urlFor("/x"), { method: "HEAD" })).status, 200);
  });

  test("noRange: always 200 with the whole body, no Accept-Ranges, If-Range ignored", async () => {
    o.fault("/x", { type: "noRange" });
    const h = await request(o.urlFor("/x"), { method: "HEAD" });
    assert.equal(h.headers["accept-ranges"], undefined);
    const r = await request(o.urlFor("/x"), { headers: { Range: "bytes=100-", "If-Range": h.headers["etag"]! } });
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-range"], undefined);
    assert.equal(sha(r.body), o.sha256Of("/x"));
    const r416 = await request(o.urlFor("/x"), { headers: { Range: `bytes=${SIZE}-` } });
    assert.equal(r416.status, 200);
    o.clearFaults();
  });

  test("status: Retry-After on 429, `times` consumed, then forever until cleared", async () => {
    o.fault("/x", { type: "status", status: 429, times: 2, headers: { "Retry-After": "7" } });
    for (let i = 0; i < 2; i++) {
      const r = await request(o.urlFor("/x"), { method: i === 0 ? "HEAD" : "GET" });
      assert.equal(r.status, 429);
      assert.equal(r.headers["retry-after"], "7");
      assert.equal(r.body.length, 0);
    }
    assert.equal((await request(o.urlFor("/x"))).status, 200);
    o.fault("/x", { type: "status", status: 503 });
    for (let i = 0; i < 3; i++) assert.equal((await request(o.urlFor("/x"))).status, 503);
    o.clearFaults("/x");
    assert.equal((await request(o.urlFor("/x"))).status, 200);
    // A fault on a path with no file answers too.
    o.fault("/ghost", { type: "status", status: 500, times: 1 });
    assert.equal((await request(o.urlFor("/ghost"))).status, 500);
    assert.equal((await request(o.urlFor("/ghost"))).status, 404);
  });

  test("reset: exactly afterBytes arrive, then ECONNRESET; resume with Range works; `times` consumed", async () => {
    o.fault("/x", { type: "reset", afterBytes: 300_000, times: 2 });
    const full = o.contentOf("/x");
    const r1 = await request(o.urlFor("/x"));
    assert.equal(r1.status, 200);
    assert.equal(r1.complete, false);
    assert.equal(r1.error?.code, "ECONNRESET");
    // A TCP reset may make the receiver drop bytes still in its buffer: at most afterBytes arrive.
    assert.ok(r1.body.length <= 300_000);
    assert.deepEqual(r1.body, full.subarray(0, r1.body.length));
    const at = r1.body.length;
    // afterBytes counts from the start of the ranged body.
    const r2 = await request(o.urlFor("/x"), { headers: { Range: `bytes=${at}-` } });
    assert.equal(r2.status, 206);
    assert.equal(r2.error?.code, "ECONNRESET");
    assert.ok(r2.body.length <= 300_000);
    assert.deepEqual(r2.body, full.subarray(at, at + r2.body.length));
    const at2 = at + r2.body.length;
    const r3 = await request(o.urlFor("/x"), { headers: { Range: `bytes=${at2}-` } });
    assert.equal(r3.status, 206);
    assert.ok(r3.complete);
    assert.deepEqual(Buffer.concat([r1.body, r2.body, r3.body]), full);
    const log = o.requests("/x").slice(-3);
    assert.deepEqual(log.map((e) => [e.status, e.bytesSent, e.fault]), [
      [200, 300_000, "reset"],
      [206, 300_000, "reset"],
      [206, SIZE - at2, null],
    ]);
  });

  test("reset with afterBytes 0: headers arrive, then the reset", async () => {
    o.fault("/x", { type: "reset", afterBytes: 0, times: 1 });
    const r = await request(o.urlFor("/x"));
    assert.equal(r.status, 200);
    assert.equal(r.body.length, 0);
    assert.equal(r.error?.code, "ECONNRESET");
  });

  test("body faults skip HEAD and non-body answers without being consumed", async () => {
    o.fault("/x", { type: "reset", afterBytes: 10, times: 1 });
    assert.equal((await request(o.urlFor("/x"), { method: "HEAD" })).status, 200);
    assert.equal((await request(o.urlFor("/x"), { headers: { Range: `bytes=${SIZE}-` } })).status, 416);
    const r = await request(o.urlFor("/x"));
    assert.equal(r.error?.code, "ECONNRESET");
    assert.equal(r.body.length, 10);
    assert.ok((await request(o.urlFor("/x"))).complete);
  });

  test("stall: afterBytes arrive, then nothing until the client gives up; next request fine", async () => {
    o.fault("/x", { type: "stall", afterBytes: 50_000, times: 1 });
    const t0 = Date.now();
    const r = await request(o.urlFor("/x"), { timeoutMs: 300 });
    assert.equal(r.status, 200);
    assert.equal(r.body.length, 50_000);
    assert.equal(r.error?.code, "CLIENT_TIMEOUT");
    assert.ok(Date.now() - t0 >= 290);
    assert.deepEqual(r.body, o.contentOf("/x").subarray(0, 50_000));
    const next = await request(o.urlFor("/x"), { timeoutMs: 5000 });
    assert.ok(next.complete);
    assert.equal(next.body.length, SIZE);
  });

  test("shortBody: full Content-Length announced, clean close after `bytes`", async () => {
    o.fault("/x", { type: "shortBody", bytes: 123_456, times: 1 });
    const r = await request(o.urlFor("/x"));
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-length"], String(SIZE));
    assert.equal(r.body.length, 123_456);
    assert.equal(r.complete, false);
    assert.ok(r.error, "the client notices the premature close");
    // undici (fetch) sees it the same way.
    o.fault("/x", { type: "shortBody", bytes: 1000, times: 1 });
    await assert.rejects(async () => {
      const res = await fetch(o.urlFor("/x"));
      await res.arrayBuffer();
    });
    assert.ok((await request(o.urlFor("/x"))).complete);
  });

  test("redirect: relative path and absolute URL, status, `times` consumed", async () => {
    o.add({ path: "/y", size: 5000 });
    o.fault("/x", { type: "redirect", to: "/y", times: 1 });
    let r = await request(o.urlFor("/x"));
    assert.equal(r.status, 302);
    assert.equal(r.headers["location"], "/y");
    assert.equal((await request(o.urlFor("/x"), { method: "HEAD" })).status, 200);

    o.fault("/x", { type: "redirect", to: o.urlFor("/y"), status: 307, times: 2 });
    r = await request(o.urlFor("/x"), { method: "HEAD" });
    assert.equal(r.status, 307);
    assert.equal(r.headers["location"], o.urlFor("/y"));
    // fetch follows it to /y's content.
    const f = await fetch(o.urlFor("/x"));
    assert.equal(f.status, 200);
    assert.equal(sha(Buffer.from(await f.arrayBuffer())), o.sha256Of("/y"));
    assert.equal((await request(o.urlFor("/x"))).status, 200);

    o.fault("/x", { type: "redirect", to: "/y", status: 301 });
    assert.equal((await request(o.urlFor("/x"))).status, 301);
    assert.equal((await request(o.urlFor("/x"))).status, 301);
    o.clearFaults("/x");
  });

  test("faults queue in order: 503, then reset, then shortBody, then normal", async () => {
    o.fault("/x", { type: "status", status: 503, times: 1 });
    o.fault("/x", { type: "reset", afterBytes: 1000, times: 1 });
    o.fault("/x", { type: "shortBody", bytes: 2000, times: 1 });
    const got = [];
    for (let i = 0; i < 4; i++) {
      const r = await request(o.urlFor("/x"));
      got.push([r.status, r.body.length, r.complete]);
    }
    assert.deepEqual(got, [
      [503, 0, true],
      [200, 1000, false],
      [200, 2000, false],
      [200, SIZE, true],
    ]);
    assert.deepEqual(o.requests("/x").slice(-4).map((e) => e.fault), ["status", "reset", "shortBody", null]);
  });

  test("rate: the body is throttled", async () => {
    o.add({ path: "/slow", size: 100_000 });
    o.fault("/slow", { type: "rate", bytesPerSecond: 200_000 });
    const t0 = Date.now();
    const r = await request(o.urlFor("/slow"));
    const ms = Date.now() - t0;
    assert.ok(r.complete);
    assert.equal(sha(r.body), o.sha256Of("/slow"));
    assert.ok(ms >= 450 && ms < 3000, `100 kB at 200 kB/s took ${ms} ms`);
    // Rate combines with a fault: a stall after 20 kB, throttled.
    o.fault("/slow", { type: "stall", afterBytes: 20_000, times: 1 });
    const s = await request(o.urlFor("/slow"), { timeoutMs: 400 });
    assert.equal(s.body.length, 20_000);
  });

  test("request log and bytesServed", async () => {
    const o2 = await startOrigin([{ path: "/p", size: 1000 }]);
    try {
      await request(o2.urlFor("/p"), { headers: { Range: "bytes=10-19", "If-Range": '"zz"' } });
      await request(o2.urlFor("/p"), { method: "HEAD" });
      await request(o2.urlFor("/p"), { headers: { Range: "bytes=10-19" } });
      await request(o2.urlFor("/q"));
      const log = o2.requests();
      assert.deepEqual(
        log.map((e) => [e.method, e.path, e.range, e.ifRange, e.status, e.bytesSent]),
        [
          ["GET", "/p", "bytes=10-19", '"zz"', 200, 1000],
          ["HEAD", "/p", null, null, 200, 0],
          ["GET", "/p", "bytes=10-19", null, 206, 10],
          ["GET", "/q", null, null, 404, 0],
        ],
      );
      assert.equal(log[0]?.headers["if-range"], '"zz"');
      assert.ok(log.every((e) => typeof e.at === "number" && e.at > 0));
      assert.equal(o2.requests("/p").length, 3);
      assert.equal(o2.bytesServed(), 1010);
      assert.equal(o2.bytesServed("/p"), 1010);
      assert.equal(o2.bytesServed("/q"), 0);
    } finally {
      await o2.close();
    }
  });
});

describe("large files and shutdown", () => {
  test("a 64 MiB file streams with a matching sha256 and flat memory", async (t) => {
    const o = await startOrigin([{ path: "/big", size: 64 * MiB }]);
    try {
      const expected = o.sha256Of("/big");
      const h = createHash("sha256");
      let n = 0;
      const rss0 = process.memoryUsage.rss();
      let peak = rss0;
      const t0 = process.hrtime.bigint();
      await new Promise<void>((resolve, reject) => {
        http
          .get(o.urlFor("/big"), { agent: false }, (res) => {
            assert.equal(res.statusCode, 200);
            res.on("data", (c: Buffer) => {
              n += c.length;
              h.update(c);
              if ((n & (4 * MiB - 1)) < c.length) peak = Math.max(peak, process.memoryUsage.rss());
            });
            res.on("end", resolve);
            res.on("error", reject);
          })
          .on("error", reject);
      });
      const sec = Number(process.hrtime.bigint() - t0) / 1e9;
      assert.equal(n, 64 * MiB);
      assert.equal(h.digest("hex"), expected);
      assert.equal(o.bytesServed("/big"), 64 * MiB);
      const grew = (peak - rss0) / MiB;
      t.diagnostic(`64 MiB in ${(sec * 1000).toFixed(0)} ms: ${(64 / sec).toFixed(0)} MiB/s (client hashing included); rss grew ${grew.toFixed(1)} MiB`);
      assert.ok(grew < 40, `rss grew ${grew.toFixed(1)} MiB while streaming 64 MiB`);
    } finally {
      await o.close();
    }
  });

  test("sha256Of works for 1 GiB without materialising it", async () => {
    const o = await startOrigin([{ path: "/huge", size: 1024 * MiB }]);
    try {
      const hex = o.sha256Of("/huge");
      assert.match(hex, /^[0-9a-f]{64}$/);
      assert.equal(o.sha256Of("/huge"), hex);
      assert.throws(() => o.contentOf("/huge"), /sha256Of/);
      // HEAD and a range at the far end.
      const h = await request(o.urlFor("/huge"), { method: "HEAD" });
      assert.equal(h.headers["content-length"], String(1024 * MiB));
      const tail = await request(o.urlFor("/huge"), { headers: { Range: `bytes=${1024 * MiB - 100}-` } });
      assert.equal(tail.status, 206);
      assert.deepEqual(tail.body, generateContent("/huge", 1024 * MiB - 100, 1024 * MiB));
    } finally {
      await o.close();
    }
  });

  test("close() returns promptly with a stalled client and a throttled one; the clients see errors", async () => {
    const o = await startOrigin([{ path: "/s", size: 10 * MiB }, { path: "/t", size: 10 * MiB }]);
    o.fault("/s", { type: "stall", afterBytes: 1000 });
    o.fault("/t", { type: "rate", bytesPerSecond: 10_000 });
    const keepAlive = new http.Agent({ keepAlive: true });
    try {
      const stalled = request(o.urlFor("/s"));
      const slow = request(o.urlFor("/t"));
      const idle = await request(o.urlFor("/small-missing"), { agent: keepAlive }); // leaves an idle keep-alive socket
      assert.equal(idle.status, 404);
      while (o.requests("/s")[0]?.bytesSent !== 1000 || o.requests("/t").length === 0) {
        await new Promise((r) => setTimeout(r, 10));
      }
      const t0 = Date.now();
      await o.close();
      const ms = Date.now() - t0;
      assert.ok(ms < 1000, `close() took ${ms} ms`);
      const [s, t] = await Promise.all([stalled, slow]);
      assert.equal(s.body.length, 1000);
      assert.ok(s.error && !s.complete);
      assert.ok(t.error && !t.complete);
      await o.close(); // idempotent
    } finally {
      keepAlive.destroy();
    }
  });
});
