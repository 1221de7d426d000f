/**
 * The raw HTTP/1.1 client (src/transfer/http1.ts) against hand-written responses from a TCP server on
 * loopback: framing (Content-Length, chunked with extensions and trailers, close-delimited, none),
 * interim 1xx, keep-alive reuse and its limits, a pooled connection closed by the server, malformed
 * responses, early ends (FIN and RST), backpressure, and abort. Each server script answers the n-th
 * request on each connection with the bytes given.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { request, BodyEndedEarly, ParseError, closeIdleConnections, type RawResponse } from "../../src/transfer/http1.js";

interface Script {
  /** what to write for a request (raw bytes), or a function doing it on the socket */
  answer: (req: string, sock: net.Socket, n: number) => void;
}

const servers: net.Server[] = [];
after(() => {
  for (const s of servers) s.close();
});

/** A server that answers each complete request head with `script.answer`. Counts connections and requests. */
async function serve(script: Script): Promise<{ url: string; connections: () => number; requests: string[] }> {
  let connections = 0;
  const requests: string[] = [];
  const server = net.createServer((sock) => {
    connections++;
    let buf = "";
    let n = 0;
    sock.on("data", (d) => {
      buf += d.toString("latin1");
      let i: number;
      while ((i = buf.indexOf("\r\n\r\n")) >= 0) {
        const req = buf.slice(0, i);
        buf = buf.slice(i + 4);
        requests.push(req);
        script.answer(req, sock, n++);
      }
    });
    sock.on("error", () => {});
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as net.AddressInfo;
  return { url: `http://127.0.0.1:${port}`, connections: () => connections, requests };
}

async function readAll(res: RawResponse, highWater = 1 << 20): Promise<Buffer> {
  const parts: Buffer[] = [];
  await res.body(highWater, () => {}, async (chunks) => {
    for (const c of chunks) parts.push(Buffer.from(c));
  });
  return Buffer.concat(parts);
}

const scope = () => ({}); // a fresh pool per test

test("Content-Length body, request line and headers as sent", async () => {
  const s = await serve({ answer: (_r, sock) => sock.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: \"a\"\r\n\r\nhello") });
  const res = await request(new URL(`${s.url}/a/b?x=1%202`), { range: "bytes=0-", "x-custom": "v" }, { scope: scope() });
  assert.equal(res.status, 200);
  assert.equal(res.headers.etag, '"a"');
  assert.equal((await readAll(res)).toString(), "hello");
  assert.match(s.requests[0]!, /^GET \/a\/b\?x=1%202 HTTP\/1\.1\r\n/);
  assert.match(s.requests[0]!, new RegExp(`\\r\\nHost: ${new URL(s.url).host}\\r\\n`));
  assert.match(s.requests[0]!, /\r\nrange: bytes=0-\r\n/);
  assert.match(s.requests[0]!, /\r\nx-custom: v(\r\n|$)/);
});

test("chunked body with extensions and trailers, split across many writes", async () => {
  const body = "chunk one|chunk two, longer|3";
  const raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9;ext=1\r\nchunk one\r\n13\r\n|chunk two, longer|\r\n1\r\n3\r\n0\r\nX-Trailer: t\r\n\r\n";
  const s = await serve({
    answer: (_r, sock) => {
      // one byte at a time: every state boundary lands mid-buffer somewhere
      let i = 0;
      const tick = () => {
        if (i < raw.length) {
          sock.write(raw[i++]!);
          setImmediate(tick);
        }
      };
      tick();
    },
  });
  const sc = scope();
  const res = await request(new URL(`${s.url}/c`), {}, { scope: sc });
  assert.equal((await readAll(res)).toString(), body);
  // the connection is reusable after a cleanly ended chunked body
  const again = await request(new URL(`${s.url}/c`), {}, { scope: sc });
  assert.equal((await readAll(again)).toString(), body);
  assert.equal(s.connections(), 1);
});

test("close-delimited body (no length): complete at FIN, connection not reused", async () => {
  const s = await serve({
    answer: (_r, sock) => {
      sock.write("HTTP/1.1 200 OK\r\n\r\nuntil ");
      setTimeout(() => sock.end("close"), 20);
    },
  });
  const sc = scope();
  const res = await request(new URL(`${s.url}/x`), {}, { scope: sc });
  assert.equal((await readAll(res)).toString(), "until close");
  const res2 = await request(new URL(`${s.url}/x`), {}, { scope: sc });
  assert.equal((await readAll(res2)).toString(), "until close");
  assert.equal(s.connections(), 2);
});

test("interim 100 and 103 responses are skipped; 204 has no body", async () => {
  const s = await serve({
    answer: (_r, sock, n) =>
      sock.write(n === 0 ? "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" : "HTTP/1.1 204 No Content\r\n\r\n"),
  });
  const sc = scope();
  const res = await request(new URL(`${s.url}/i`), {}, { scope: sc });
  assert.equal(res.status, 200);
  assert.equal((await readAll(res)).toString(), "ok");
  const res2 = await request(new URL(`${s.url}/i`), {}, { scope: sc });
  assert.equal(res2.status, 204);
  assert.equal((await readAll(res2)).length, 0);
  assert.equal(s.connections(), 1);
});

test("keep-alive: sequential requests share one connection; Connection: close and HTTP/1.0 do not", async () => {
  const ka = await serve({ answer: (_r, sock) => sock.write("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nk") });
  const sc = scope();
  for (let i = 0; i < 5; i++) assert.equal((await readAll(await request(new URL(`${ka.url}/k`), {}, { scope: sc }))).toString(), "k");
  assert.equal(ka.connections(), 1);

  const closing = await serve({ answer: (_r, sock) => sock.write("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\nc") });
  for (let i = 0; i < 3; i++) assert.equal((await readAll(await request(new URL(`${closing.url}/c`), {}, { scope: sc }))).toString(), "c");
  assert.equal(closing.connections(), 3);

  const old = await serve({ answer: (_r, sock) => sock.write("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\no") });
  for (let i = 0; i < 2; i++) assert.equal((await readAll(await request(new URL(`${old.url}/o`), {}, { scope: sc }))).toString(), "o");
  assert.equal(old.connections(), 2);
});

test("a pooled connection the server closed meanwhile: the request is retried once on a new connection", async () => {
  // The server closes each connection 30 ms after answering, without announcing it.
  const s = await serve({
    answer: (_r, sock) => {
      sock.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
      setTimeout(() => sock.destroy(), 30);
    },
  });
  const sc = scope();
  assert.equal((await readAll(await request(new URL(`${s.url}/r`), {}, { scope: sc }))).toString(), "hi");
  await new Promise((r) => setTimeout(r, 80));
  assert.equal((await readAll(await request(new URL(`${s.url}/r`), {}, { scope: sc }))).toString(), "hi");
  assert.equal(s.connections(), 2);

  // And the race: the close arrives only after the request was written on the reused connection.
  let seen = 0;
  const racy = await serve({
    answer: (_r, sock) => {
      const n = seen++;
      if (n === 0) sock.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
      else if (n === 1) sock.destroy(); // the second request, on the first connection: closed, no answer
      else sock.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nyo");
    },
  });
  assert.equal((await readAll(await request(new URL(`${racy.url}/r`), {}, { scope: sc }))).toString(), "hi");
  assert.equal((await readAll(await request(new URL(`${racy.url}/r`), {}, { scope: sc }))).toString(), "yo");
  assert.equal(racy.connections(), 2);
});

test("malformed responses reject with HPE_* codes", async () => {
  const cases: [string, string][] = [
    ["SSH-2.0-OpenSSH\r\n\r\n", "HPE_INVALID_CONSTANT"],
    ["HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", "HPE_INVALID_CONTENT_LENGTH"],
    ["HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "HPE_INVALID_CONTENT_LENGTH"],
    ["HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n", "HPE_INVALID_HEADER_TOKEN"],
    ["HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\n\r\n", "HPE_INVALID_HEADER_TOKEN"],
    ["HTTP/1.1 101 Switching Protocols\r\n\r\n", "HPE_INVALID_STATUS"],
    [`HTTP/1.1 200 OK\r\nX-Big: ${"a".repeat(70_000)}\r\n\r\n`, "HPE_HEADER_OVERFLOW"],
  ];
  for (const [raw, code] of cases) {
    const s = await serve({ answer: (_r, sock) => sock.write(raw) });
    await assert.rejects(request(new URL(`${s.url}/m`), {}, { scope: scope() }), (err: unknown) => err instanceof ParseError && err.code === code, raw.slice(0, 40));
  }
  const s = await serve({ answer: (_r, sock) => sock.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n") });
  const res = await request(new URL(`${s.url}/m`), {}, { scope: scope() });
  await assert.rejects(readAll(res), (err: unknown) => err instanceof ParseError && err.code === "HPE_INVALID_CHUNK_SIZE");
});

test("early ends: FIN before Content-Length is a short body (bytes kept), RST a reset; chunked FIN too", async () => {
  const fin = await serve({ answer: (_r, sock) => sock.end("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd") });
  const got: Buffer[] = [];
  const res = await request(new URL(`${fin.url}/f`), {}, { scope: scope() });
  await assert.rejects(
    res.body(1 << 20, () => {}, async (chunks) => void got.push(...chunks.map((c) => Buffer.from(c)))),
    (err: unknown) => err instanceof BodyEndedEarly && !err.reset,
  );
  assert.equal(Buffer.concat(got).toString(), "abcd", "the received prefix still reached the sink");

  const rst = await serve({
    answer: (_r, sock) => {
      sock.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab");
      setTimeout(() => sock.resetAndDestroy(), 30);
    },
  });
  const res2 = await request(new URL(`${rst.url}/r`), {}, { scope: scope() });
  await assert.rejects(readAll(res2), (err: unknown) => err instanceof BodyEndedEarly && err.reset && (err.cause as NodeJS.ErrnoException).code === "ECONNRESET");

  const chunkedFin = await serve({ answer: (_r, sock) => sock.end("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab") });
  const res3 = await request(new URL(`${chunkedFin.url}/c`), {}, { scope: scope() });
  await assert.rejects(readAll(res3), (err: unknown) => err instanceof BodyEndedEarly && !err.reset);

  const headFin = await serve({ answer: (_r, sock) => sock.end("HTTP/1.1 200 OK\r\nContent-") });
  await assert.rejects(request(new URL(`${headFin.url}/h`), {}, { scope: scope() }), (err: unknown) => (err as NodeJS.ErrnoException).code === "ECONNRESET");

  const refused = await serve({ answer: () => {} });
  const port = new URL(refused.url).port;
  servers.pop()!.close();
  await new Promise((r) => setTimeout(r, 20));
  await assert.rejects(request(new URL(`http://127.0.0.1:${port}/x`), {}, { scope: scope() }), (err: unknown) => (err as NodeJS.ErrnoException).code === "ECONNREFUSED");
});

test("bytes after a complete response: the connection is not reused", async () => {
  const s = await serve({ answer: (_r, sock) => sock.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA") });
  const sc = scope();
  assert.equal((await readAll(await request(new URL(`${s.url}/e`), {}, { scope: sc }))).toString(), "ok");
  assert.equal((await readAll(await request(new URL(`${s.url}/e`), {}, { scope: sc }))).toString(), "ok");
  assert.equal(s.connections(), 2);
});

test("backpressure: a slow sink pauses reading and still gets every byte, in order", async () => {
  const size = 8 * 1024 * 1024;
  const payload = Buffer.alloc(size);
  for (let i = 0; i < size; i += 4) payload.writeUInt32LE(i, i);
  const s = await serve({ answer: (_r, sock) => sock.write(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`), payload])) });
  const res = await request(new URL(`${s.url}/big`), {}, { scope: scope() });
  const parts: Buffer[] = [];
  let maxBatch = 0;
  await res.body(256 * 1024, () => {}, async (chunks, bytes) => {
    maxBatch = Math.max(maxBatch, bytes);
    for (const c of chunks) parts.push(Buffer.from(c));
    await new Promise((r) => setTimeout(r, 2));
  });
  assert.ok(Buffer.concat(parts).equals(payload));
  assert.ok(maxBatch <= 256 * 1024 + 512 * 1024, `a batch of ${maxBatch} bytes: reading did not pause`);
});

test("abort before the head rejects with the signal's reason; destroy() during the body rejects body()", async () => {
  const silent = await serve({ answer: () => {} });
  const ac = new AbortController();
  const p = request(new URL(`${silent.url}/s`), {}, { scope: scope(), signal: ac.signal });
  setTimeout(() => ac.abort(new Error("stop now")), 30);
  await assert.rejects(p, /stop now/);

  const slow = await serve({ answer: (_r, sock) => sock.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nab") });
  const res = await request(new URL(`${slow.url}/b`), {}, { scope: scope() });
  setTimeout(() => res.destroy(new Error("cancelled")), 30);
  await assert.rejects(readAll(res), /cancelled/);
});

test("connections are pooled per scope (one address policy never reuses another's connection)", async () => {
  const s = await serve({ answer: (_r, sock) => sock.write("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nk") });
  const a = scope();
  const b = scope();
  await readAll(await request(new URL(`${s.url}/k`), {}, { scope: a }));
  await readAll(await request(new URL(`${s.url}/k`), {}, { scope: b }));
  await readAll(await request(new URL(`${s.url}/k`), {}, { scope: a }));
  assert.equal(s.connections(), 2);
  closeIdleConnections(a);
  closeIdleConnections(b);
});

test("request headers: invalid characters are refused before anything is sent; URL credentials become Basic auth", async () => {
  const s = await serve({ answer: (_r, sock) => sock.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") });
  await assert.rejects(request(new URL(`${s.url}/h`), { "x-a": "line\r\nbreak" }, { scope: scope() }), (err: unknown) => (err as NodeJS.ErrnoException).code === "ERR_INVALID_CHAR");
  await assert.rejects(request(new URL(`${s.url}/h`), { "x a": "v" }, { scope: scope() }), (err: unknown) => (err as NodeJS.ErrnoException).code === "ERR_INVALID_HTTP_TOKEN");
  assert.equal(s.requests.length, 0);
  const u = new URL(s.url);
  u.username = "us%20er";
  u.password = "p:w";
  await readAll(await request(new URL(`${u.toString()}h`), {}, { scope: scope() }));
  assert.match(s.requests[0]!, new RegExp(`\\r\\nAuthorization: Basic ${Buffer.from("us er:p:w").toString("base64")}`));
});

test("Transfer-Encoding and Content-Length together: chunked wins, and the connection is not reused (RFC 9112 6.3)", async () => {
  const s = await serve({ answer: (_r, sock) => sock.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n") });
  const sc = scope();
  assert.equal((await readAll(await request(new URL(`${s.url}/te`), {}, { scope: sc }))).toString(), "abc");
  assert.equal((await readAll(await request(new URL(`${s.url}/te`), {}, { scope: sc }))).toString(), "abc");
  assert.equal(s.connections(), 2);
});
