// A small HTTP/1.1 client for plain-http downloads: GET only, keep-alive connections pooled per
// origin, responses parsed straight off the socket.
//
// Why not node:http: a download spends most of its CPU outside the kernel's copies in node:http's
// per-chunk machinery (parser callback, IncomingMessage stream, a fresh 64 KiB Buffer per read).
// Here the socket reads into large slabs that the client owns (net.connect's `onread`), so one read
// can return up to 512 KiB and body bytes reach the writer as views of the slab, with no copy and no
// stream in between: about 0.6 ms less CPU per MiB (docs/performance.md, "The raw HTTP/1.1 client").
// https keeps using node:https (src/transfer/http.ts): there the cipher dominates.
//
// What it implements (RFC 9112): a status line HTTP/1.0 or 1.1, 1xx interim responses skipped,
// header lines (obs-fold refused), framing by Transfer-Encoding (chunked, with extensions and
// trailers; any other coding: read until close), Content-Length (repeated values must agree),
// no body for 204/304, else read until close. Connections are reused only after a response whose
// framing ended cleanly, HTTP/1.1 without `Connection: close` (1.0 only with keep-alive), and with no
// byte after its end. A request on a reused connection that the server had closed meanwhile (no
// byte of response, then FIN/RST) is retried once on a new connection: GET is idempotent.
// Errors: anything malformed rejects with code HPE_* (classified INVALID_SERVER_RESPONSE, like
// node's parser); a connection closed early rejects with BodyEndedEarly; socket errors as they are.
import net from "node:net";

/** Connection ended before the body did: FIN (`reset` false: a short body when the length is known) or an error (`reset` true, `cause`). */
export class BodyEndedEarly extends Error {
  constructor(
    readonly reset: boolean,
    override readonly cause?: unknown,
  ) {
    super(reset ? "the connection failed before the body ended" : "the connection closed before the body ended");
    this.name = "BodyEndedEarly";
  }
}

/** A malformed response (code HPE_*, as node's llhttp names its parse errors). */
export class ParseError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ParseError";
  }
}

export type Sink = (chunks: Buffer[], bytes: number) => Promise<void>;

export interface RawResponse {
  status: number;
  /** lower-case names; a repeated header's values joined with ", " */
  headers: Record<string, string>;
  /**
   * Streams the body to `sink`: chunks queue while `sink` runs, then go to it together. Reading
   * pauses when `highWater` bytes are queued. Resolves once the whole body (by its framing) has been
   * written; rejects with the sink's error, BodyEndedEarly, ParseError, or the error given to destroy().
   * Bytes received before a connection failure are still handed to the sink first.
   */
  body(highWater: number, onChunk: () => void, sink: Sink): Promise<void>;
  /** Done without the body: the connection is reused if the body was empty and complete, else closed. */
  discard(): void;
  /** Abort: closes the connection; a pending body() rejects with `err`. */
  destroy(err: Error): void;
}

export interface RequestOptions {
  /** DNS lookup for names (the address policy's guarded lookup); literals connect directly. */
  lookup?: net.LookupFunction;
  /** Connections are pooled per (scope, host, port): pass the address policy, so that a connection checked under one policy never serves another. */
  scope?: object;
  signal?: AbortSignal;
}

const SLAB = 512 * 1024;
/** A fresh slab when less than this is left in the current one (the size of node's own reads). */
const MIN_READ = 64 * 1024;
const MAX_HEAD = 64 * 1024;
const MAX_LINE = 8 * 1024;
const MAX_IDLE_PER_ORIGIN = 64;
const IDLE_MS = 30_000;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * A read buffer. Body bytes leave it as views; once it is full (`retired`) and every view of it has
 * been written (`pending` 0), it goes back to a small shared pool instead of to the garbage
 * collector, so a long download reuses a few slabs instead of allocating one per 512 KiB (which
 * made the peak resident size grow with the file size).
 */
class Slab {
  fill = 0;
  pending = 0;
  retired = false;
  constructor(readonly buf: Buffer) {}
  release(): void {
    if (--this.pending === 0 && this.retired) giveSlab(this.buf);
  }
}
const freeSlabs: Buffer[] = [];
const MAX_FREE_SLABS = 8;
const takeSlab = () => new Slab(freeSlabs.pop() ?? Buffer.allocUnsafe(SLAB));
function giveSlab(b: Buffer): void {
  if (freeSlabs.length < MAX_FREE_SLABS) freeSlabs.push(b);
}

type Framing = { kind: "none" } | { kind: "length"; remaining: number } | { kind: "chunked" } | { kind: "close" };

const pools = new WeakMap<object, Map<string, Conn[]>>();
const NO_SCOPE = {};

function poolOf(scope: object, key: string): Conn[] {
  let byKey = pools.get(scope);
  if (!byKey) pools.set(scope, (byKey = new Map()));
  let list = byKey.get(key);
  if (!list) byKey.set(key, (list = []));
  return list;
}

/** One TCP connection; at most one exchange at a time. */
class Conn {
  readonly socket: net.Socket;
  exchange: Exchange | null = null;
  /** completed exchanges on this connection */
  served = 0;
  dead = false;
  private slab = takeSlab();
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly pool: Conn[],
    host: string,
    port: number,
    lookup: net.LookupFunction | undefined,
  ) {
    this.socket = net.connect({
      host,
      port,
      ...(lookup ? { lookup } : {}),
      onread: {
        // Reads land in the current slab after what earlier reads left there; views of earlier
        // bytes stay valid (a slab is not read into again until they are written), so the body
        // needs no copy.
        buffer: () => {
          const slab = this.slab;
          if (slab.buf.length - slab.fill < MIN_READ) {
            slab.retired = true;
            if (slab.pending === 0) giveSlab(slab.buf);
            this.slab = takeSlab();
          }
          // a throttled body reads in small pieces (its high-water mark), so the limit stays smooth
          return this.slab.buf.subarray(this.slab.fill, this.slab.fill + (this.exchange?.readCap ?? SLAB));
        },
        callback: (n: number, buf: Uint8Array) => {
          this.slab.fill += n;
          const chunk = Buffer.from(buf.buffer, buf.byteOffset, n);
          if (this.exchange) this.exchange.feed(chunk, this.slab);
          else this.kill(); // bytes nobody asked for: never reuse this connection
          return true;
        },
      },
    });
    this.socket.setNoDelay(true);
    this.socket.on("end", () => this.ended(null));
    this.socket.on("error", (err) => this.ended(err));
    this.socket.on("close", () => this.ended(null));
  }

  private ended(err: Error | null): void {
    this.dead = true;
    this.unpool();
    const x = this.exchange;
    if (x) x.connectionEnded(err);
  }

  kill(): void {
    this.dead = true;
    this.unpool();
    this.socket.destroy();
  }

  private unpool(): void {
    const i = this.pool.indexOf(this);
    if (i >= 0) this.pool.splice(i, 1);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  /** The exchange ended cleanly: back to the pool (or closed). */
  release(reusable: boolean): void {
    this.exchange = null;
    this.served++;
    if (!reusable || this.dead || this.pool.length >= MAX_IDLE_PER_ORIGIN) {
      this.kill();
      return;
    }
    if (this.socket.isPaused()) this.socket.resume(); // an idle connection must notice the server's FIN
    this.pool.push(this);
    this.idleTimer = setTimeout(() => this.kill(), IDLE_MS);
    this.idleTimer.unref();
  }

  take(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    const i = this.pool.indexOf(this);
    if (i >= 0) this.pool.splice(i, 1);
  }
}

/** One request and its response on a connection. */
class Exchange {
  private state: "head" | "body" | "done" | "failed" = "head";
  private head: Buffer | null = null;
  private framing: Framing = { kind: "close" };
  private keepAlive = false;
  private received = 0;
  // chunked decoding
  private chunkState: "size" | "data" | "data-crlf" | "trailers" = "size";
  private chunkLeft = 0;
  private line: Buffer | null = null;
  // body delivery
  private queue: Buffer[] = [];
  /** the slab of each queued view (null: not a slab's bytes, e.g. a reassembled header) */
  private slabs: (Slab | null)[] = [];
  private current: Slab | null = null;
  private queued = 0;
  private highWater = 1 << 20;
  /** the most one socket read may return (the consumer's high-water mark, at most the slab) */
  readCap = SLAB;
  private onChunk: (() => void) | null = null;
  private sink: Sink | null = null;
  private writing = false;
  private ended = false;
  private streamError: unknown = null;
  private failure: unknown = null;
  private bodyResolve: (() => void) | null = null;
  private bodyReject: ((err: unknown) => void) | null = null;
  private headResolve: (r: RawResponse) => void;
  private headReject: (err: unknown) => void;
  readonly headPromise: Promise<RawResponse>;

  constructor(readonly conn: Conn) {
    let res!: (r: RawResponse) => void;
    let rej!: (err: unknown) => void;
    this.headPromise = new Promise<RawResponse>((a, b) => {
      res = a;
      rej = b;
    });
    this.headResolve = res;
    this.headReject = rej;
  }

  /** No byte of a response has arrived yet (a stale pooled connection can be retried). */
  get untouched(): boolean {
    return this.received === 0;
  }

  feed(chunk: Buffer, slab: Slab | null = null): void {
    this.current = slab;
    this.received += chunk.length;
    try {
      while (chunk.length > 0) {
        if (this.state === "head") chunk = this.feedHead(chunk);
        else if (this.state === "body") chunk = this.feedBody(chunk);
        else {
          // bytes after the end of the response (or after a failure): never reuse the connection
          this.keepAlive = false;
          this.conn.kill();
          return;
        }
      }
    } catch (err) {
      this.fail(err);
    }
  }

  private feedHead(chunk: Buffer): Buffer {
    const acc = this.head ? Buffer.concat([this.head, chunk]) : chunk;
    const from = this.head ? Math.max(0, this.head.length - 3) : 0;
    const end = acc.indexOf("\r\n\r\n", from, "latin1");
    if (end < 0) {
      if (acc.length > MAX_HEAD) throw new ParseError("HPE_HEADER_OVERFLOW", `response header larger than ${MAX_HEAD} bytes`);
      this.head = Buffer.from(acc); // a copy: small, and the slab view may be reused by a later exchange
      return Buffer.alloc(0);
    }
    if (end > MAX_HEAD) throw new ParseError("HPE_HEADER_OVERFLOW", `response header larger than ${MAX_HEAD} bytes`);
    const text = acc.toString("latin1", 0, end);
    const rest = acc.subarray(end + 4);
    this.head = null;
    this.parseHead(text);
    return rest;
  }

  private parseHead(text: string): void {
    const lines = text.split("\r\n");
    const m = /^HTTP\/1\.([01]) (\d{3})(?: [^\r\n]*)?$/.exec(lines[0]!);
    if (!m) throw new ParseError("HPE_INVALID_CONSTANT", `not an HTTP/1.x status line: ${JSON.stringify(lines[0]!.slice(0, 80))}`);
    const minor = Number(m[1]);
    const status = Number(m[2]);
    const headers: Record<string, string> = {};
    for (let i = 1; i < lines.length; i++) {
      const l = lines[i]!;
      if (l.startsWith(" ") || l.startsWith("\t")) throw new ParseError("HPE_INVALID_HEADER_TOKEN", "obsolete line folding in a response header");
      const c = l.indexOf(":");
      const name = c > 0 ? l.slice(0, c) : "";
      if (!TOKEN.test(name)) throw new ParseError("HPE_INVALID_HEADER_TOKEN", `invalid response header line: ${JSON.stringify(l.slice(0, 80))}`);
      const value = l.slice(c + 1).trim();
      const key = name.toLowerCase();
      headers[key] = key in headers ? `${headers[key]}, ${value}` : value;
    }
    if (status >= 100 && status < 200) {
      if (status === 101) throw new ParseError("HPE_INVALID_STATUS", "101 Switching Protocols to a GET");
      return; // interim response: the final one follows
    }
    const conn = (headers.connection ?? "").toLowerCase();
    const te = headers["transfer-encoding"];
    const cl = headers["content-length"];
    if (status === 204 || status === 304) this.framing = { kind: "none" };
    else if (te !== undefined) {
      const codings = te.toLowerCase().split(",").map((s) => s.trim());
      this.framing = codings[codings.length - 1] === "chunked" ? { kind: "chunked" } : { kind: "close" };
    } else if (cl !== undefined) {
      const values = cl.split(",").map((s) => s.trim());
      if (!values.every((v) => /^\d{1,15}$/.test(v)) || values.some((v) => v !== values[0])) {
        throw new ParseError("HPE_INVALID_CONTENT_LENGTH", `invalid Content-Length: ${JSON.stringify(cl.slice(0, 80))}`);
      }
      this.framing = { kind: "length", remaining: Number(values[0]) };
      if (values.length > 1) headers["content-length"] = values[0]!;
    } else this.framing = { kind: "close" };
    // With both Transfer-Encoding and Content-Length, the first wins and the connection must be
    // closed afterwards (RFC 9112 section 6.3).
    this.keepAlive =
      this.framing.kind !== "close" &&
      !(te !== undefined && cl !== undefined) &&
      (minor === 1 ? !/(^|,)\s*close\s*(,|$)/.test(conn) : /(^|,)\s*keep-alive\s*(,|$)/.test(conn));
    this.state = "body";
    this.headResolve(this.response(status, headers));
    if (this.framing.kind === "none" || (this.framing.kind === "length" && this.framing.remaining === 0)) this.finish();
  }

  private feedBody(chunk: Buffer): Buffer {
    const f = this.framing;
    if (f.kind === "close") {
      this.deliver(chunk);
      return Buffer.alloc(0);
    }
    if (f.kind === "length") {
      const take = Math.min(f.remaining, chunk.length);
      if (take > 0) this.deliver(chunk.subarray(0, take));
      f.remaining -= take;
      if (f.remaining === 0) this.finish();
      return chunk.subarray(take);
    }
    if (f.kind === "chunked") return this.feedChunked(chunk);
    return chunk;
  }

  /** Reads a CRLF-terminated line; null until it is complete. */
  private readLine(chunk: Buffer): { line: string | null; rest: Buffer } {
    const acc = this.line ? Buffer.concat([this.line, chunk]) : chunk;
    const end = acc.indexOf("\r\n", this.line ? Math.max(0, this.line.length - 1) : 0, "latin1");
    if (end < 0) {
      if (acc.length > MAX_LINE) throw new ParseError("HPE_CHUNK_EXTENSIONS_OVERFLOW", "chunk header or trailer line too long");
      this.line = Buffer.from(acc);
      return { line: null, rest: Buffer.alloc(0) };
    }
    this.line = null;
    return { line: acc.toString("latin1", 0, end), rest: acc.subarray(end + 2) };
  }

  private feedChunked(chunk: Buffer): Buffer {
    while (chunk.length > 0 && this.state === "body") {
      if (this.chunkState === "data") {
        const take = Math.min(this.chunkLeft, chunk.length);
        this.deliver(chunk.subarray(0, take));
        this.chunkLeft -= take;
        chunk = chunk.subarray(take);
        if (this.chunkLeft === 0) this.chunkState = "data-crlf";
        continue;
      }
      const { line, rest } = this.readLine(chunk);
      chunk = rest;
      if (line === null) break;
      if (this.chunkState === "size") {
        const m = /^([0-9a-fA-F]{1,12})[ \t]*(;.*)?$/.exec(line);
        if (!m) throw new ParseError("HPE_INVALID_CHUNK_SIZE", `invalid chunk size line: ${JSON.stringify(line.slice(0, 40))}`);
        this.chunkLeft = parseInt(m[1]!, 16);
        this.chunkState = this.chunkLeft === 0 ? "trailers" : "data";
      } else if (this.chunkState === "data-crlf") {
        if (line !== "") throw new ParseError("HPE_STRICT", "chunk data not followed by CRLF");
        this.chunkState = "size";
      } else if (line === "") {
        this.finish(); // end of trailers
      }
    }
    return chunk;
  }

  private response(status: number, headers: Record<string, string>): RawResponse {
    return {
      status,
      headers,
      body: (highWater, onChunk, sink) => {
        this.highWater = highWater;
        this.readCap = Math.max(MIN_READ / 4, Math.min(SLAB, highWater));
        this.onChunk = onChunk;
        this.sink = sink;
        const done = new Promise<void>((resolve, reject) => {
          this.bodyResolve = resolve;
          this.bodyReject = reject;
        });
        if (this.failure) this.settle();
        else this.pump();
        return done;
      },
      discard: () => {
        this.queue = [];
        this.slabs = [];
        this.queued = 0;
        // complete by its framing: the connection is already back in the pool; else close it
        if (this.state !== "done") this.fail(new Error("response discarded"));
      },
      destroy: (err) => this.fail(err),
    };
  }

  private deliver(view: Buffer): void {
    const slab = this.current && view.buffer === this.current.buf.buffer ? this.current : null;
    if (slab) slab.pending++;
    this.slabs.push(slab);
    this.queue.push(view);
    this.queued += view.length;
    this.onChunk?.();
    if (this.queued >= this.highWater && !this.conn.socket.isPaused()) this.conn.socket.pause();
    this.pump();
  }

  private pump(): void {
    if (!this.sink || this.writing) return;
    if (this.failure) {
      this.settle();
      return;
    }
    if (this.queue.length === 0) {
      if (this.ended) this.settle();
      return;
    }
    const batch = this.queue;
    const slabs = this.slabs;
    const bytes = this.queued;
    this.queue = [];
    this.slabs = [];
    this.queued = 0;
    if (this.state === "body" && this.conn.socket.isPaused()) this.conn.socket.resume();
    this.writing = true;
    this.sink(batch, bytes).then(
      () => {
        this.writing = false;
        // the sink is done with these bytes: their slabs may be read into again
        for (const s of slabs) s?.release();
        this.pump();
      },
      (err) => {
        this.writing = false;
        this.fail(err);
      },
    );
  }

  /** The body is complete by its framing. */
  private finish(): void {
    if (this.state !== "body") return;
    this.state = "done";
    this.ended = true;
    this.conn.release(this.keepAlive);
    this.pump();
  }

  /** The connection ended (FIN, error or close) while this exchange was on it. */
  connectionEnded(err: Error | null): void {
    if (this.state === "done" || this.state === "failed") return;
    if (this.state === "head") {
      this.fail(err ?? Object.assign(new Error("socket hang up"), { code: "ECONNRESET" }));
      return;
    }
    if (this.framing.kind === "close" && !err) {
      this.state = "done";
      this.ended = true;
      this.conn.exchange = null;
      this.pump();
      return;
    }
    // Bytes already received are a valid prefix: hand them to the sink, then fail.
    this.state = "failed";
    this.ended = true;
    this.streamError = new BodyEndedEarly(err !== null, err ?? undefined);
    this.conn.exchange = null;
    this.pump();
  }

  fail(err: unknown): void {
    if (this.failure) return;
    this.failure = err;
    this.state = "failed";
    this.conn.exchange = null;
    this.conn.kill();
    this.headReject(err);
    this.settle();
  }

  private settle(): void {
    if (this.writing) return; // after the write in flight
    const reject = this.bodyReject;
    const resolve = this.bodyResolve;
    if (!reject || !resolve) return;
    this.bodyResolve = this.bodyReject = null;
    if (this.failure) reject(this.failure);
    else if (this.streamError) reject(this.streamError);
    else resolve();
  }
}

/** `host:port`, the connection's address; IPv6 literals without brackets. */
function target(url: URL): { host: string; port: number } {
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  return { host, port: url.port ? Number(url.port) : 80 };
}

function requestHead(url: URL, headers: Record<string, string>): Buffer {
  let head = `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n`;
  let auth = false;
  for (const [name, value] of Object.entries(headers)) {
    if (!TOKEN.test(name)) throw Object.assign(new TypeError(`invalid request header name ${JSON.stringify(name)}`), { code: "ERR_INVALID_HTTP_TOKEN" });
    if (/[^\t\x20-\x7e\x80-\xff]/.test(value)) throw Object.assign(new TypeError(`invalid character in the value of request header ${name}`), { code: "ERR_INVALID_CHAR" });
    if (name.toLowerCase() === "authorization") auth = true;
    head += `${name}: ${value}\r\n`;
  }
  if (!auth && (url.username || url.password)) {
    // as node:http does for credentials in the URL (a redirect's Location may carry them)
    const cred = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
    head += `Authorization: Basic ${Buffer.from(cred).toString("base64")}\r\n`;
  }
  return Buffer.from(`${head}\r\n`, "latin1");
}

/**
 * Sends `GET url` (http: only) and resolves with the response head; the body is read with
 * `body()`. Rejects with the connection's error (ECONNREFUSED, the lookup's refusal, ...), a
 * ParseError, or the signal's reason.
 */
export async function request(url: URL, headers: Record<string, string>, o: RequestOptions = {}): Promise<RawResponse> {
  if (url.protocol !== "http:") throw new Error(`http1.request: ${url.protocol} is not supported`);
  const bytes = requestHead(url, headers);
  const { host, port } = target(url);
  const pool = poolOf(o.scope ?? NO_SCOPE, `${host}:${port}`);
  for (let attempt = 0; ; attempt++) {
    let conn: Conn | undefined;
    while ((conn = pool.pop()) && conn.dead);
    const reused = !!conn;
    if (conn) conn.take();
    else conn = new Conn(pool, host, port, o.lookup);
    const x = new Exchange(conn);
    conn.exchange = x;
    // Until the head has arrived; then the caller destroys the response on abort.
    const abort = () => x.fail(o.signal!.reason);
    if (o.signal?.aborted) abort();
    o.signal?.addEventListener("abort", abort, { once: true });
    conn.socket.write(bytes);
    try {
      const res = await x.headPromise;
      o.signal?.removeEventListener("abort", abort);
      return res;
    } catch (err) {
      o.signal?.removeEventListener("abort", abort);
      if (o.signal?.aborted) throw o.signal.reason;
      // A kept-alive connection the server closed meanwhile: once more on a new one.
      if (reused && attempt === 0 && x.untouched && !(err instanceof ParseError)) continue;
      throw err;
    }
  }
}

/** Closes every idle pooled connection (tests, shutdown). */
export function closeIdleConnections(scope: object = NO_SCOPE): void {
  const byKey = pools.get(scope);
  if (!byKey) return;
  for (const list of byKey.values()) for (const c of [...list]) c.kill();
}
