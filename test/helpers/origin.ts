// A real HTTP origin for the transfer worker's tests: node:http on 127.0.0.1 (port 0), files whose
// content is generated on the fly from (seed, offset), faithful GET/HEAD/Range/If-Range semantics,
// and injectable faults (error statuses, resets, stalls, short bodies, redirects, throttling, no
// Range support, no HEAD). Every request is logged before it is answered.
//
// Content: a 64 KiB block derived from sha256(seed) (the AES-128-CTR keystream under that key), and block k of a file
// (bytes k*64Ki .. k*64Ki+64Ki-1) is that block rotated left by (k * 0x9E37) mod 64Ki bytes. So the
// content is pseudo-random, depends on the absolute offset (a chunk written at the wrong offset is
// caught, period 64Ki blocks = 4 GiB), and costs nothing to produce: chunks are zero-copy views of
// one cached 128 KiB buffer. `size` only truncates: the same seed with a larger size is a prefix
// extension.
//
// Faults, per path, are kept in the order added:
//  - "noHead", "noRange", "rate" are standing modifiers (until clearFaults).
//  - "status", "redirect", "reset", "stall", "shortBody" form a queue: a request looks only at the
//    first entry; when it applies it is used once (`times` counts down, the entry is removed at 0;
//    no `times` = forever, which blocks the entries behind it).
//  - "status"/"redirect" apply to any GET or HEAD. "reset"/"stall"/"shortBody" are body faults: they
//    apply only to a GET answered 200/206; any other request passes through without consuming them
//    (so a client's HEAD probe, or a 416, does not use up a reset meant for its GET).
//  - "noHead" answers HEAD before the queue is looked at (a server that never allows HEAD), so a HEAD
//    refused by it consumes nothing.
// Responses that are not file content (fault statuses, 404, 405, 416, redirects, 304, 412) have empty
// bodies, so bytesServed() counts file content only.
import { createCipheriv, createHash } from "node:crypto";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { Readable } from "node:stream";

export interface OriginFile {
  /** Request path, e.g. "/data/a.bin". A query string in the request is ignored when matching. */
  path: string;
  /** Bytes. Content is generated from (seed, offset); nothing is held in memory. */
  size: number;
  /** Default: the path. */
  seed?: string;
  /** Default: a strong ETag derived from seed + size. null: send no ETag. */
  etag?: string | null;
  /** Default: a fixed date offset by a hash of seed + size (so a new seed also moves it). null: send none. */
  lastModified?: Date | null;
}

export type Fault =
  /** Answer this status (empty body, plus `headers`, e.g. Retry-After) to the next `times` requests (default forever). */
  | { type: "status"; status: number; times?: number; headers?: Record<string, string> }
  /** Send headers and `afterBytes` body bytes, wait until they have left the process, then reset the connection (TCP RST). */
  | { type: "reset"; afterBytes: number; times?: number }
  /** Send headers and `afterBytes` body bytes, then send nothing more, keeping the connection open. */
  | { type: "stall"; afterBytes: number; times?: number }
  /** Ignore Range and If-Range: always 200 with the whole body, no Accept-Ranges. */
  | { type: "noRange" }
  /** HEAD answers `status` (default 405, with Allow: GET; 403 for a presigned-S3-like URL). */
  | { type: "noHead"; status?: number }
  /** Throttle every body on this path to this rate. */
  | { type: "rate"; bytesPerSecond: number }
  /** Redirect (default 302) to another path (sent as a relative Location) or an absolute URL. */
  | { type: "redirect"; to: string; status?: number; times?: number }
  /** Announce the full Content-Length but close the connection cleanly (FIN) after `bytes` body bytes. */
  | { type: "shortBody"; bytes: number; times?: number };

export interface RequestLog {
  method: string;
  /** The request path without its query string. */
  path: string;
  range: string | null;
  ifRange: string | null;
  headers: Record<string, string | string[] | undefined>;
  status: number;
  /** File-content bytes handed to the socket for this response (so far, for one still in progress). */
  bytesSent: number;
  /** Date.now() when the request arrived. */
  at: number;
  /** Which fault answered or shaped this request, if any (extra to the brief; handy in assertions). */
  fault: Fault["type"] | null;
}

export interface Origin {
  /** "http://127.0.0.1:<port>" */
  url: string;
  urlFor(path: string): string;
  /** Add or replace a file. */
  add(file: OriginFile): void;
  /** Patch a file, e.g. { seed: "v2" }: "the remote version changed". Default validators follow the new seed/size. */
  change(path: string, patch: Partial<OriginFile>): void;
  fault(path: string, fault: Fault): void;
  clearFaults(path?: string): void;
  /** Snapshots of every request received (optionally for one path), in arrival order. */
  requests(path?: string): RequestLog[];
  /** Total file-content bytes written (optionally for one path). */
  bytesServed(path?: string): number;
  /** The full current content (small files only; throws above 256 MiB). */
  contentOf(path: string): Buffer;
  /** Hex sha256 of the full current content, by streaming the generator (cached per seed + size). */
  sha256Of(path: string): string;
  /** Close the server and destroy every open socket, stalled ones included. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Content generation

const BLOCK = 64 * 1024;
const MASK = BLOCK - 1;
const ROT = 0x9e37; // odd, so the rotations of 64Ki consecutive blocks are all distinct

const doubledBlocks = new Map<string, Buffer>();

/** The seed's 64 KiB block, twice in a row (128 KiB), so any rotation is one zero-copy subarray. */
function doubledBlock(seed: string): Buffer {
  let bb = doubledBlocks.get(seed);
  if (!bb) {
    // The keystream of AES-128-CTR keyed by sha256(seed): pseudo-random, and about 100 times
    // cheaper than sha256 in counter mode, so that serving thousands of distinct small files (the
    // many-files benchmark) costs the origin little CPU (it shares the machine with the client).
    const key = createHash("sha256").update(seed, "utf8").digest();
    const cipher = createCipheriv("aes-128-ctr", key.subarray(0, 16), key.subarray(16, 32));
    bb = Buffer.allocUnsafe(2 * BLOCK);
    cipher.update(Buffer.alloc(BLOCK)).copy(bb, 0);
    bb.copy(bb, BLOCK, 0, BLOCK);
    if (doubledBlocks.size >= 256) doubledBlocks.clear();
    doubledBlocks.set(seed, bb);
  }
  return bb;
}

/** Zero-copy views of content bytes [start, end), at most 64 KiB each, never crossing a block boundary. */
function* chunks(seed: string, start: number, end: number): Generator<Buffer> {
  const bb = doubledBlock(seed);
  let pos = start;
  while (pos < end) {
    const n = Math.min(BLOCK - (pos % BLOCK), end - pos);
    yield slice(bb, pos, n);
    pos += n;
  }
}

function slice(bb: Buffer, pos: number, n: number): Buffer {
  const k = Math.floor(pos / BLOCK);
  const r = (k * ROT) & MASK; // k < 2^53 / 2^16, and (k * ROT) stays exact well past any test size
  const from = r + (pos % BLOCK);
  return bb.subarray(from, from + n);
}

/** Content bytes [start, end) of `seed` as one Buffer (a copy). */
export function generateContent(seed: string, start: number, end: number): Buffer {
  return Buffer.concat([...chunks(seed, start, end)], Math.max(0, end - start));
}

const shaCache = new Map<string, string>();

function sha256OfContent(seed: string, size: number): string {
  const key = `${size}\0${seed}`;
  let hex = shaCache.get(key);
  if (!hex) {
    const h = createHash("sha256");
    for (const c of chunks(seed, 0, size)) h.update(c);
    hex = h.digest("hex");
    shaCache.set(key, hex);
  }
  return hex;
}

/** Streams content bytes [start, end), optionally throttled; respects backpressure (generates only on _read). */
class ContentStream extends Readable {
  private pos: number;
  private sent = 0;
  private readonly t0 = Date.now();
  private timer: NodeJS.Timeout | null = null;
  private readonly bb: Buffer;

  constructor(
    seed: string,
    start: number,
    private readonly end: number,
    private readonly rate: number | null,
  ) {
    super({ highWaterMark: 4 * BLOCK });
    this.bb = doubledBlock(seed);
    this.pos = start;
  }

  override _read(): void {
    if (this.timer) return;
    for (;;) {
      if (this.pos >= this.end) {
        this.push(null);
        return;
      }
      let n = Math.min(BLOCK - (this.pos % BLOCK), this.end - this.pos);
      if (this.rate !== null) {
        // Token bucket without burst: by elapsed time t we may have sent floor(t * rate) bytes;
        // send in quanta of ~20 ms worth so slow rates do not degenerate into 1-byte writes.
        const quantum = Math.min(n, Math.max(1, Math.floor(this.rate / 50)));
        const elapsed = (Date.now() - this.t0) / 1000;
        const allowed = Math.floor(elapsed * this.rate) - this.sent;
        if (allowed < quantum) {
          const waitMs = Math.max(1, Math.ceil(((this.sent + quantum) / this.rate - elapsed) * 1000));
          this.timer = setTimeout(() => {
            this.timer = null;
            this._read();
          }, waitMs);
          return;
        }
        n = Math.min(n, allowed);
      }
      const chunk = slice(this.bb, this.pos, n);
      this.pos += n;
      this.sent += n;
      if (!this.push(chunk)) return;
    }
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    cb(err);
  }
}

// ---------------------------------------------------------------------------------------------
// Validators

const BASE_DATE = Date.UTC(2024, 0, 1, 0, 0, 0);

function defaultEtag(seed: string, size: number): string {
  return `"${createHash("sha256").update(`${seed}\0${size}`).digest("hex").slice(0, 24)}"`;
}

function defaultLastModified(seed: string, size: number): Date {
  const h = createHash("sha256").update(`lm\0${seed}\0${size}`).digest();
  return new Date(BASE_DATE + (h.readUInt32BE(0) % (365 * 24 * 3600)) * 1000);
}

interface Current {
  size: number;
  seed: string;
  etag: string | null;
  lastModified: Date | null;
}

function current(f: OriginFile): Current {
  const seed = f.seed ?? f.path;
  return {
    size: f.size,
    seed,
    etag: f.etag === undefined ? defaultEtag(seed, f.size) : f.etag,
    lastModified: f.lastModified === undefined ? defaultLastModified(seed, f.size) : f.lastModified,
  };
}

/** Entity tags listed in an If-Match / If-None-Match value ("*" handled by the caller). */
function parseEtagList(v: string): string[] {
  return v.match(/(?:W\/)?"[^"]*"/g) ?? [];
}

const opaque = (tag: string) => (tag.startsWith("W/") ? tag.slice(2) : tag);
const strongMatch = (a: string, b: string) => !a.startsWith("W/") && !b.startsWith("W/") && a === b;
const weakMatch = (a: string, b: string) => opaque(a) === opaque(b);

/** Seconds since the epoch of an HTTP date, or null when it does not parse. */
function httpDateSeconds(v: string): number | null {
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : Math.floor(t / 1000);
}

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

// ---------------------------------------------------------------------------------------------
// Range

type RangeResult = { kind: "none" } | { kind: "range"; start: number; end: number } | { kind: "unsatisfiable" };

/** RFC 9110 §14: one byte range or nothing. Invalid or multi-range headers are ignored (full 200). */
function parseRange(header: string, size: number): RangeResult {
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!m) return { kind: "none" };
  const specs = (m[1] ?? "").split(",").map((s) => s.trim()).filter((s) => s.length > 0);
  if (specs.length !== 1) return { kind: "none" }; // multi-range: answered with the whole body
  const spec = specs[0] ?? "";
  let r: RegExpExecArray | null;
  if ((r = /^(\d+)-(\d*)$/.exec(spec))) {
    const first = Number(r[1]);
    const last = r[2] ? Number(r[2]) : Infinity;
    if (last < first) return { kind: "none" };
    if (first >= size) return { kind: "unsatisfiable" };
    return { kind: "range", start: first, end: Math.min(last, size - 1) + 1 };
  }
  if ((r = /^-(\d+)$/.exec(spec))) {
    const suffix = Number(r[1]);
    if (suffix === 0 || size === 0) return { kind: "unsatisfiable" };
    return { kind: "range", start: Math.max(0, size - suffix), end: size };
  }
  return { kind: "none" };
}

// ---------------------------------------------------------------------------------------------
// Server

type QueuedFault = Extract<Fault, { type: "status" | "redirect" | "reset" | "stall" | "shortBody" }>;
interface QueueEntry {
  fault: QueuedFault;
  remaining: number; // Infinity = forever
}
interface PathFaults {
  queue: QueueEntry[];
  noHead: { status: number } | null;
  noRange: boolean;
  rate: number | null; // the lowest rate given
}

type BodyFault = Extract<Fault, { type: "reset" | "stall" | "shortBody" }>;
const isBodyFault = (f: QueuedFault): f is BodyFault => f.type === "reset" || f.type === "stall" || f.type === "shortBody";

export async function startOrigin(initial: OriginFile[] = []): Promise<Origin> {
  const files = new Map<string, OriginFile>();
  const faults = new Map<string, PathFaults>();
  const log: RequestLog[] = [];
  const sockets = new Set<Socket>();
  let closing: Promise<void> | null = null;

  for (const f of initial) add(f);

  function validate(f: OriginFile): void {
    if (!f.path.startsWith("/")) throw new Error(`origin: path must start with "/": ${f.path}`);
    if (!Number.isSafeInteger(f.size) || f.size < 0) throw new Error(`origin: bad size for ${f.path}: ${f.size}`);
    if (typeof f.etag === "string" && !/^(W\/)?"[^"]*"$/.test(f.etag)) {
      throw new Error(`origin: an ETag must be quoted ("..." or W/"..."): ${f.etag}`);
    }
  }

  function add(file: OriginFile): void {
    validate(file);
    files.set(file.path, { ...file });
  }

  function faultsFor(path: string): PathFaults {
    let pf = faults.get(path);
    if (!pf) {
      pf = { queue: [], noHead: null, noRange: false, rate: null };
      faults.set(path, pf);
    }
    return pf;
  }

  function mustGet(path: string): OriginFile {
    const f = files.get(path);
    if (!f) throw new Error(`origin: no file at ${path}`);
    return f;
  }

  /** Takes one use of the queue's first entry. */
  function consume(pf: PathFaults): void {
    const head = pf.queue[0];
    if (head && --head.remaining <= 0) pf.queue.shift();
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const method = req.method ?? "GET";
    const rawUrl = req.url ?? "/";
    const qAt = rawUrl.indexOf("?");
    let path = qAt >= 0 ? rawUrl.slice(0, qAt) : rawUrl;
    if (/^https?:\/\//i.test(path)) path = new URL(path).pathname; // absolute-form request target
    const header = (name: string): string | null => {
      const v = req.headers[name];
      return v === undefined ? null : Array.isArray(v) ? v.join(", ") : v;
    };
    const entry: RequestLog = {
      method,
      path,
      range: header("range"),
      ifRange: header("if-range"),
      headers: { ...req.headers },
      status: 0,
      bytesSent: 0,
      at: Date.now(),
      fault: null,
    };
    log.push(entry);
    res.on("error", () => {});

    const empty = (status: number, headers: Record<string, string | number> = {}) => {
      entry.status = status;
      res.writeHead(status, { ...headers, "Content-Length": 0 });
      res.end();
    };

    if (method !== "GET" && method !== "HEAD") return empty(405, { Allow: "GET, HEAD" });

    const pf = faults.get(path);
    if (method === "HEAD" && pf?.noHead) {
      entry.fault = "noHead";
      return empty(pf.noHead.status, pf.noHead.status === 405 ? { Allow: "GET" } : {});
    }

    const head = pf?.queue[0]?.fault;
    if (pf && head?.type === "status") {
      consume(pf);
      entry.fault = "status";
      return empty(head.status, head.headers ?? {});
    }
    if (pf && head?.type === "redirect") {
      consume(pf);
      entry.fault = "redirect";
      return empty(head.status ?? 302, { Location: head.to });
    }

    const file = files.get(path);
    if (!file) return empty(404);
    const cur = current(file);
    const noRange = pf?.noRange ?? false;

    const validators: Record<string, string> = {};
    if (cur.etag !== null) validators["ETag"] = cur.etag;
    if (cur.lastModified !== null) validators["Last-Modified"] = cur.lastModified.toUTCString();
    const common: Record<string, string> = {
      "Content-Type": "application/octet-stream",
      ...(noRange ? {} : { "Accept-Ranges": "bytes" }),
      ...validators,
    };

    // Preconditions, RFC 9110 §13.2.2 order.
    const ifMatch = header("if-match");
    const ifUnmodifiedSince = header("if-unmodified-since");
    const ifNoneMatch = header("if-none-match");
    const ifModifiedSince = header("if-modified-since");
    if (ifMatch !== null) {
      const ok = ifMatch.trim() === "*" || (cur.etag !== null && parseEtagList(ifMatch).some((t) => strongMatch(t, cur.etag!)));
      if (!ok) return empty(412, validators);
    } else if (ifUnmodifiedSince !== null && cur.lastModified !== null) {
      const s = httpDateSeconds(ifUnmodifiedSince);
      if (s !== null && seconds(cur.lastModified) > s) return empty(412, validators);
    }
    if (ifNoneMatch !== null) {
      const hit = ifNoneMatch.trim() === "*" || (cur.etag !== null && parseEtagList(ifNoneMatch).some((t) => weakMatch(t, cur.etag!)));
      if (hit) return empty(304, validators);
    } else if (ifModifiedSince !== null && cur.lastModified !== null) {
      const s = httpDateSeconds(ifModifiedSince);
      if (s !== null && seconds(cur.lastModified) <= s) return empty(304, validators);
    }

    // Range (GET only, RFC 9110 §14.2), gated by If-Range (§13.1.5).
    let range: RangeResult = { kind: "none" };
    if (method === "GET" && !noRange && entry.range !== null) {
      let honour = true;
      if (entry.ifRange !== null) {
        const v = entry.ifRange.trim();
        if (v.startsWith('"') || v.startsWith("W/")) {
          honour = cur.etag !== null && strongMatch(v, cur.etag);
        } else {
          const s = httpDateSeconds(v);
          honour = s !== null && cur.lastModified !== null && seconds(cur.lastModified) === s;
        }
      }
      if (honour) range = parseRange(entry.range, cur.size);
    }
    if (range.kind === "unsatisfiable") {
      entry.status = 416;
      res.writeHead(416, { ...common, "Content-Range": `bytes */${cur.size}`, "Content-Length": 0 });
      res.end();
      return;
    }

    const start = range.kind === "range" ? range.start : 0;
    const end = range.kind === "range" ? range.end : cur.size;
    const status = range.kind === "range" ? 206 : 200;
    const headers: Record<string, string | number> = { ...common, "Content-Length": end - start };
    if (range.kind === "range") headers["Content-Range"] = `bytes ${start}-${end - 1}/${cur.size}`;

    if (method === "HEAD") {
      entry.status = status;
      res.writeHead(status, headers);
      res.end();
      return;
    }

    // A GET with a body: the queue's first entry applies if it is a body fault.
    let bodyFault: BodyFault | null = null;
    if (pf && head && isBodyFault(head)) {
      bodyFault = head;
      consume(pf);
      entry.fault = head.type;
    }
    if (!bodyFault && pf?.rate != null) entry.fault = "rate";
    let limit = end;
    if (bodyFault?.type === "shortBody") {
      limit = Math.min(end, start + bodyFault.bytes);
      headers["Connection"] = "close"; // Node then ends the socket (FIN) once the response is done
    } else if (bodyFault) {
      limit = Math.min(end, start + bodyFault.afterBytes);
    }

    entry.status = status;
    res.writeHead(status, headers);
    const src = new ContentStream(cur.seed, start, limit, pf?.rate ?? null);
    const sock = req.socket;
    let pending = 0;
    let ended = false;
    let done = false;
    const finish = () => {
      if (done || !ended || pending > 0) return;
      done = true;
      if (!bodyFault || bodyFault.type === "shortBody") {
        res.end(); // a short body ends "cleanly" here; strictContentLength is off, Connection: close closes it
      } else if (bodyFault.type === "stall") {
        res.flushHeaders(); // (afterBytes 0: the headers still go out)
        // Nothing more, ever: the socket stays open until the client or close() ends it.
      } else {
        // reset. Everything written has left the process; give the kernel a moment to deliver it
        // over loopback before the RST (an abortive close discards data not yet sent).
        res.flushHeaders();
        const rst = () => {
          if (!sock.destroyed) sock.resetAndDestroy();
        };
        const whenDrained = () => (sock.writableLength > 0 ? sock.once("drain", () => setTimeout(rst, 20)) : setTimeout(rst, 20));
        setImmediate(whenDrained);
      }
    };
    src.on("data", (chunk: Buffer) => {
      entry.bytesSent += chunk.length;
      pending++;
      const ok = res.write(chunk, () => {
        pending--;
        finish();
      });
      if (!ok) {
        src.pause();
        res.once("drain", () => src.resume());
      }
    });
    src.on("end", () => {
      ended = true;
      finish();
    });
    res.on("close", () => src.destroy());
  }

  const server = http.createServer(handle);
  server.keepAliveTimeout = 30_000;
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("clientError", (_err, s: Socket) => s.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    urlFor: (path: string) => url + (path.startsWith("/") ? path : `/${path}`),
    add,
    change(path, patch) {
      const f = mustGet(path);
      const next: OriginFile = { ...f, ...patch, path };
      validate(next);
      files.set(path, next);
    },
    fault(path, fault) {
      const pf = faultsFor(path);
      switch (fault.type) {
        case "noHead":
          pf.noHead = { status: fault.status ?? 405 };
          return;
        case "noRange":
          pf.noRange = true;
          return;
        case "rate":
          if (!(fault.bytesPerSecond > 0)) throw new Error("origin: rate must be > 0 bytes/s");
          pf.rate = pf.rate === null ? fault.bytesPerSecond : Math.min(pf.rate, fault.bytesPerSecond);
          return;
        default: {
          const times = fault.times ?? Infinity;
          if (!(times >= 1)) throw new Error(`origin: times must be >= 1 (or omitted for forever): ${times}`);
          pf.queue.push({ fault: { ...fault }, remaining: times });
        }
      }
    },
    clearFaults(path) {
      if (path === undefined) faults.clear();
      else faults.delete(path);
    },
    requests(path) {
      return log.filter((e) => path === undefined || e.path === path).map((e) => ({ ...e, headers: { ...e.headers } }));
    },
    bytesServed(path) {
      let n = 0;
      for (const e of log) if (path === undefined || e.path === path) n += e.bytesSent;
      return n;
    },
    contentOf(path) {
      const cur = current(mustGet(path));
      if (cur.size > 256 * 1024 * 1024) throw new Error(`origin: ${path} is ${cur.size} bytes; use sha256Of for large files`);
      return generateContent(cur.seed, 0, cur.size);
    },
    sha256Of(path) {
      const cur = current(mustGet(path));
      return sha256OfContent(cur.seed, cur.size);
    },
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
