// One file over HTTP(S), streamed to its temporary file, resumable at a byte offset.
//
// - Resume: `Range: bytes=<offset>-` with `If-Range: <ETag>` (a strong ETag, else Last-Modified).
//   206 from the offset: append. 200 instead (the version changed, or the server ignores Range):
//   truncate and start again from byte 0, so a file never mixes two versions. A server without
//   range support therefore restarts from 0 on resume instead of failing (BITS fails there).
// - No HEAD: the GET's headers give the size and validators, so servers that refuse HEAD (e.g.
//   presigned S3 URLs) work.
// - Redirects followed by hand (at most `maxRedirects`, http/https only); Authorization is dropped
//   when a redirect leaves the origin.
// - Durability: the bytes are fsync'ed (datasync) before an offset is reported to `checkpoint`, so
//   the persisted offset never runs ahead of what is on disk; on open, the file is truncated back to
//   the persisted offset (a crash may have left unacknowledged bytes after it).
// - Memory: chunks are written as they arrive, with backpressure; nothing is buffered whole.
import fs from "node:fs/promises";
import { constants as fsConstants } from "node:fs";
import http from "node:http";
import https from "node:https";
import type net from "node:net";
import { createHash, type Hash } from "node:crypto";
import type { Failure } from "../domain/retry-policy.js";
import { failureFromError } from "../domain/retry-policy.js";
import { throttle, type TokenBucket } from "./throttle.js";
import { DESTINATION_NOT_ALLOWED, guardedLookup, literalRefusal, type AddressPolicy } from "./address-policy.js";
import { BodyEndedEarly, request as rawGet, type RawResponse, type Sink } from "./http1.js";

export class TransferFailure extends Error {
  constructor(readonly failure: Failure) {
    super(`transfer failed: ${failure.kind}`);
    this.name = "TransferFailure";
  }
}

export interface DownloadTarget {
  url: string;
  tempPath: string;
  /** bytes already durable in the temporary file (the persisted offset) */
  offset: bigint;
  /** validators of the version the temporary file holds */
  etag: string | null;
  lastModified: string | null;
  sha256: string | null;
}

export interface Checkpoint {
  bytesTransferred: bigint;
  bytesTotal: bigint | null;
  etag: string | null;
  lastModified: string | null;
  finalUrl: string;
  done: boolean;
}

export interface DownloadOptions {
  signal: AbortSignal;
  headers: Record<string, string>;
  buckets: () => readonly (TokenBucket | null)[];
  /** no byte for this long (connect, headers or body) -> a stall failure */
  stallSeconds: number;
  maxRedirects: number;
  checkpointMs: number;
  /**
   * Also persist after 1/checkpointFraction of the file (at least 1 MiB; 8 MiB while the size is
   * unknown), at most every 250 ms: bounds what a crash makes us fetch again to about that fraction.
   */
  checkpointFraction?: number;
  onConnected: () => Promise<void>;
  /** Persist progress (the bytes it names are on disk). */
  checkpoint: (c: Checkpoint) => Promise<void>;
  /**
   * Where haul may connect (SSRF guard): checked on the address actually connected to, through the
   * DNS lookup of every request (so rebinding and redirects cannot get around it) and on literal
   * addresses in every URL, redirects included. Undefined: everything.
   */
  policy?: AddressPolicy;
  /** Fetch plain http through node:http instead of the raw HTTP/1.1 client (https always uses node:https). */
  nodeHttp?: boolean;
}

const agentOpts = { keepAlive: true, maxSockets: 64, maxFreeSockets: 64 };
const httpAgent = new http.Agent(agentOpts);
const httpsAgent = new https.Agent(agentOpts);

/**
 * One response, whichever client fetched it: plain http goes through the raw HTTP/1.1 client
 * (src/transfer/http1.ts), https through node:https.
 */
interface Response {
  status: number;
  header(name: string): string | undefined;
  /** where the response came from (after redirects) */
  url: URL;
  /** See RawResponse.body: rejects with BodyEndedEarly when the connection ends before the body does. */
  body(highWater: number, onChunk: () => void, sink: Sink): Promise<void>;
  /** Done without reading the body. */
  discard(): void;
  destroy(err: Error): void;
}

function fromRaw(r: RawResponse, url: URL): Response {
  return { status: r.status, header: (n) => r.headers[n], url, body: r.body, discard: r.discard, destroy: r.destroy };
}

function fromNode(res: http.IncomingMessage, url: URL): Response {
  return {
    status: res.statusCode ?? 0,
    header: (n) => {
      const v = res.headers[n];
      return Array.isArray(v) ? v.join(", ") : v;
    },
    url,
    body: async (highWater, onChunk, sink) => {
      // A clean close (FIN) before Content-Length is a short body; a reset (RST) errors the socket.
      let socketError: Error | null = null;
      // Removed when the body ends: a keep-alive socket serves many requests, and a listener left on
      // it per request would pile up (MaxListenersExceededWarning after 10 small files).
      const sock = res.socket;
      const onSocketError = (e: Error) => (socketError = e);
      sock?.on("error", onSocketError);
      try {
        await streamBody(res, highWater, onChunk, sink);
      } catch (err) {
        if ((err as Error).message === "aborted") throw new BodyEndedEarly(socketError !== null, socketError ?? err);
        throw err;
      } finally {
        sock?.removeListener("error", onSocketError);
      }
      if (!res.complete) throw new BodyEndedEarly(socketError !== null, socketError ?? undefined);
    },
    discard: () => res.resume(),
    destroy: (err) => res.destroy(err),
  };
}

/** One GET over node:http(s) (https: TLS stays with node). */
function nodeRequest(url: URL, hdrs: Record<string, string>, o: DownloadOptions, stall: Stall, lookup: net.LookupFunction | undefined): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const mod = url.protocol === "https:" ? https : http;
    const req = mod.request(url, {
      method: "GET",
      headers: hdrs,
      agent: url.protocol === "https:" ? httpsAgent : httpAgent,
      ...(lookup ? { lookup } : {}),
    });
    stall.arm(() => req.destroy(new StallError("headers")));
    const onAbort = () => req.destroy(o.signal.reason as Error);
    o.signal.addEventListener("abort", onAbort, { once: true });
    req.on("response", (r) => {
      o.signal.removeEventListener("abort", onAbort);
      resolve(fromNode(r, url));
    });
    req.on("error", (err) => {
      o.signal.removeEventListener("abort", onAbort);
      reject(err);
    });
    req.end();
  });
}

/** One GET over the raw HTTP/1.1 client (plain http). */
async function rawRequest(url: URL, hdrs: Record<string, string>, o: DownloadOptions, stall: Stall, lookup: net.LookupFunction | undefined): Promise<Response> {
  // The stall watchdog and the caller's signal both stop the request until its head has arrived.
  const ac = new AbortController();
  const forward = () => ac.abort(o.signal.reason);
  if (o.signal.aborted) forward();
  o.signal.addEventListener("abort", forward, { once: true });
  stall.arm(() => ac.abort(new StallError("headers")));
  try {
    return fromRaw(await rawGet(url, hdrs, { lookup, scope: o.policy, signal: ac.signal }), url);
  } finally {
    o.signal.removeEventListener("abort", forward);
  }
}

function isStrongEtag(etag: string | null): etag is string {
  return !!etag && !etag.startsWith("W/");
}

/** Sends one GET (following redirects); resolves with the final response, body unread. */
async function get(start: URL, headers: Record<string, string>, o: DownloadOptions, stall: Stall): Promise<Response> {
  let url = start;
  let hdrs = { ...headers };
  const lookup = o.policy ? guardedLookup(o.policy) : undefined;
  for (let hop = 0; ; hop++) {
    if (o.policy) {
      const refused = literalRefusal(o.policy, url);
      if (refused) throw new TransferFailure({ kind: "destinationNotAllowed", address: refused.address });
    }
    const res = url.protocol === "http:" && !o.nodeHttp ? await rawRequest(url, hdrs, o, stall, lookup) : await nodeRequest(url, hdrs, o, stall, lookup);
    const status = res.status;
    if (status >= 300 && status < 400 && status !== 304) {
      res.discard();
      const loc = res.header("location");
      if (hop >= o.maxRedirects) throw new TransferFailure({ kind: "tooManyRedirects", limit: o.maxRedirects });
      let next: URL;
      try {
        next = new URL(loc ?? "", url);
      } catch {
        throw new TransferFailure({ kind: "badRedirect", location: loc ?? null });
      }
      if (!loc || (next.protocol !== "http:" && next.protocol !== "https:")) throw new TransferFailure({ kind: "badRedirect", location: loc ?? null });
      if (next.origin !== url.origin) {
        hdrs = Object.fromEntries(Object.entries(hdrs).filter(([k]) => k.toLowerCase() !== "authorization"));
      }
      url = next;
      continue;
    }
    return res;
  }
}

class StallError extends Error {
  constructor(readonly phase: "connect" | "headers" | "body") {
    super(`no data for too long (${phase})`);
  }
}

/**
 * A resettable watchdog: fires when no activity happened for `seconds`. `kick` runs for every body
 * chunk, so it re-arms one timer (`refresh`) instead of replacing it. While `held` (haul itself is
 * holding the bytes back: bandwidth throttling), it does not fire.
 */
class Stall {
  private timer: NodeJS.Timeout | null = null;
  private fire: (() => void) | null = null;
  private held = false;
  constructor(private readonly ms: number) {}
  arm(fire: () => void): void {
    this.fire = fire;
    this.kick();
  }
  kick(): void {
    if (this.timer) this.timer.refresh();
    else
      this.timer = setTimeout(() => {
        if (this.held) this.timer?.refresh();
        else this.fire?.();
      }, this.ms);
  }
  /** Runs `fn` with the watchdog held, then restarts its clock. */
  async holding<T>(fn: () => Promise<T>): Promise<T> {
    this.held = true;
    try {
      return await fn();
    } finally {
      this.held = false;
      this.kick();
    }
  }
  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

function parseContentRange(v: string | undefined): { start: bigint; end: bigint; total: bigint | null } | null {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(v ?? "");
  if (!m) return null;
  return { start: BigInt(m[1]!), end: BigInt(m[2]!), total: m[3] === "*" ? null : BigInt(m[3]!) };
}

async function hashPrefix(fh: fs.FileHandle, length: bigint, hash: Hash): Promise<void> {
  const buf = Buffer.allocUnsafe(1 << 20);
  let pos = 0;
  const end = Number(length);
  while (pos < end) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - pos), pos);
    if (bytesRead === 0) break;
    hash.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
}

/**
 * Body bytes queued while the previous batch is written (unthrottled). 1 MiB rather than 4: as fast
 * here, and a chunk that waits less is less often promoted to V8's old generation, where its 64 KiB
 * stays allocated until the next full GC; with 4 MiB the peak resident size grew by 30 MB over a
 * few GiB of transfers, with 1 MiB by about 15 (docs/performance.md). At most ~2 MiB per transfer.
 */
const QUEUE_BYTES = 1024 * 1024;
/** Unreported bytes synced in the background every this many bytes (see checkpointInBackground). */
const SYNC_AHEAD = 8n * 1024n * 1024n;
/** A throttled transfer's unit: reads, waits and writes of at most this many bytes. */
const THROTTLED_PIECE = 64 * 1024;

/** The bytes of `chunks` as views of at most `max` bytes each. */
function* pieces(chunks: Buffer[], max: number): Generator<Buffer> {
  for (const c of chunks) for (let i = 0; i < c.length; i += max) yield c.subarray(i, Math.min(c.length, i + max));
}

/**
 * Reads a response body while the previous batch is being written, so the network and the disk
 * overlap: chunks queue while `sink` runs, then go to it together (one writev). Reading pauses when
 * `highWater` bytes are queued (TCP backpressure slows the sender). Rejects with the stream's error
 * or the sink's; resolves once every chunk has been written.
 */
function streamBody(
  res: http.IncomingMessage,
  highWater: number,
  onChunk: () => void,
  sink: (chunks: Buffer[], bytes: number) => Promise<void>,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let queue: Buffer[] = [];
    let queued = 0;
    let writing = false;
    let ended = false;
    let failed = false;
    // A stream error (reset, early close) still lets what was received be written first: those
    // bytes are a valid prefix, and keeping them saves fetching them again.
    let streamError: unknown = null;
    const fail = (err: unknown) => {
      if (failed) return;
      failed = true;
      res.destroy();
      reject(err);
    };
    const pump = () => {
      if (writing || failed) return;
      if (queue.length === 0) {
        if (ended) {
          if (streamError) fail(streamError);
          else resolve();
        }
        return;
      }
      const batch = queue;
      const bytes = queued;
      queue = [];
      queued = 0;
      if (!ended && res.isPaused()) res.resume();
      writing = true;
      sink(batch, bytes).then(() => {
        writing = false;
        pump();
      }, fail);
    };
    res.on("data", (chunk: Buffer) => {
      onChunk();
      queue.push(chunk);
      queued += chunk.length;
      if (queued >= highWater) res.pause();
      pump();
    });
    res.on("end", () => {
      ended = true;
      pump();
    });
    res.on("error", (err) => {
      streamError ??= err;
      ended = true;
      pump();
    });
    res.on("close", () => {
      // closed without 'end' and without an error: treat as the end; the caller checks res.complete
      if (!ended) {
        ended = true;
        pump();
      }
    });
  });
}

/** Downloads (or resumes) one file. Resolves when every byte is on disk and verified. */
export async function download(t: DownloadTarget, o: DownloadOptions): Promise<Checkpoint> {
  // The caller has created the directory (and checked it for symbolic links).
  let fh: fs.FileHandle;
  try {
    // Never through a symbolic link planted at its name. From byte 0 it is created or emptied
    // right away; on resume it is created if missing and never truncated here (see below).
    const { O_RDWR, O_CREAT, O_NOFOLLOW, O_TRUNC } = fsConstants;
    fh = await fs.open(t.tempPath, O_RDWR | O_CREAT | O_NOFOLLOW | (t.offset === 0n ? O_TRUNC : 0), 0o644);
  } catch (err) {
    throw new TransferFailure(failureFromError(err, "local"));
  }
  const stall = new Stall(o.stallSeconds * 1000);
  let offset = t.offset;
  let etag = t.etag;
  let lastModified = t.lastModified;
  let total: bigint | null = null;
  let finalUrl = t.url;
  let hash: Hash | null = t.sha256 ? createHash("sha256") : null;
  let restartedAfter416 = false;
  let durable = offset; // bytes known to be on disk and reported
  let lastCheckpoint = performance.now();

  const checkpoint = async (done: boolean) => {
    await pending; // one checkpoint at a time, in order
    await fh.datasync();
    durable = offset;
    lastCheckpoint = performance.now();
    await o.checkpoint({ bytesTransferred: offset, bytesTotal: total, etag, lastModified, finalUrl, done });
  };
  // Checkpoints during the body run in the background, one at a time, so the socket keeps being
  // read while the bytes are synced and the offset is reported. `at` is taken after the writes
  // it covers have completed, so the reported offset never runs ahead of durable bytes.
  // Between reports the same background task also syncs every SYNC_AHEAD bytes without reporting
  // (write-back keeps pace with the network, and the final fdatasync before TRANSFERRED has little
  // left to do: 256 MiB went from 0.6x to about 1.0x of `curl -o`, docs/performance.md).
  let pending: Promise<void> | null = null;
  let backgroundError: unknown = null;
  let syncedFrom = offset; // where the last background sync started
  const checkpointInBackground = (report: boolean) => {
    const at = offset;
    const meta = { bytesTotal: total, etag, lastModified, finalUrl };
    syncedFrom = at;
    if (report) lastCheckpoint = performance.now();
    pending = (async () => {
      await fh.datasync();
      if (!report) return;
      durable = at;
      await o.checkpoint({ bytesTransferred: at, ...meta, done: false });
    })()
      .catch((err) => {
        backgroundError = err;
      })
      .finally(() => {
        pending = null;
      });
  };
  const restartFromZero = async () => {
    await pending;
    offset = 0n;
    syncedFrom = 0n;
    await fh.truncate(0);
    if (hash) hash = createHash("sha256");
  };

  try {
    if (offset > 0n) {
      try {
        // The persisted offset counts only bytes that were on disk; if the file holds fewer (it was
        // deleted or replaced meanwhile), never pad it: start this file again from byte 0.
        if (BigInt((await fh.stat()).size) < offset) {
          offset = 0n;
          durable = 0n;
        }
        await fh.truncate(Number(offset)); // drop anything written after the last persisted offset
        if (hash && offset > 0n) await hashPrefix(fh, offset, hash);
      } catch (err) {
        throw new TransferFailure(failureFromError(err, "local"));
      }
    }

    for (;;) {
      const headers: Record<string, string> = { ...o.headers, "accept-encoding": "identity" };
      const validator = isStrongEtag(etag) ? etag : lastModified;
      if (offset > 0n) {
        headers.range = `bytes=${offset}-`;
        if (validator) headers["if-range"] = validator;
      }
      let resp: Response;
      try {
        resp = await get(new URL(t.url), headers, o, stall);
      } catch (err) {
        if (err instanceof TransferFailure) throw err;
        if (err instanceof StallError) throw new TransferFailure({ kind: "timeout", phase: err.phase, seconds: o.stallSeconds });
        if (o.signal.aborted) throw o.signal.reason;
        if ((err as NodeJS.ErrnoException).code === DESTINATION_NOT_ALLOWED) {
          throw new TransferFailure({ kind: "destinationNotAllowed", address: String((err as { address?: string }).address ?? "") });
        }
        throw new TransferFailure(failureFromError(err, "network"));
      }
      const res = resp;
      finalUrl = resp.url.toString();
      const status = res.status;
      const resEtag = res.header("etag") ?? null;
      const resLastModified = res.header("last-modified") ?? null;

      if (status === 416) {
        res.discard();
        const cr = /^bytes \*\/(\d+)$/.exec(res.header("content-range") ?? "");
        if (cr && offset > 0n && BigInt(cr[1]!) === offset && (!etag || !resEtag || resEtag === etag)) {
          total = offset; // we already had every byte
          break;
        }
        if (offset > 0n && !restartedAfter416) {
          restartedAfter416 = true;
          await restartFromZero();
          continue;
        }
        throw new TransferFailure({ kind: "rangeNotSatisfiable", size: cr ? Number(cr[1]) : null });
      }
      if (status === 206) {
        const cr = parseContentRange(res.header("content-range"));
        const changed = (etag && resEtag && resEtag !== etag) || (!etag && lastModified && resLastModified && resLastModified !== lastModified);
        if (!cr || cr.start !== offset) {
          res.discard();
          throw new TransferFailure({ kind: "protocol", message: `206 with Content-Range ${res.header("content-range") ?? "(none)"} for a request from byte ${offset}` });
        }
        if (changed) {
          // A server that ignored If-Range but sent a new version: never splice two versions.
          res.discard();
          await restartFromZero();
          etag = resEtag;
          lastModified = resLastModified;
          continue;
        }
        total = cr.total;
      } else if (status === 200) {
        if (offset > 0n) await restartFromZero(); // changed version, or no range support
        const len = res.header("content-length");
        total = len !== undefined && /^\d+$/.test(len) ? BigInt(len) : null;
      } else {
        res.discard();
        throw new TransferFailure({ kind: "http", status, retryAfter: res.header("retry-after") ?? null, url: finalUrl });
      }
      etag = resEtag;
      lastModified = resLastModified;
      const MiB = 1n << 20n;
      const byteStep = !o.checkpointFraction
        ? null
        : total === null
          ? 8n * MiB
          : total / BigInt(o.checkpointFraction) > MiB
            ? total / BigInt(o.checkpointFraction)
            : MiB;
      await o.onConnected();

      // Stream the body. An abort (suspend, cancel, pre-emption, shutdown) destroys the socket at once.
      stall.arm(() => res.destroy(new StallError("body")));
      const onAbort = () => res.destroy(o.signal.reason as Error);
      if (o.signal.aborted) onAbort();
      o.signal.addEventListener("abort", onAbort, { once: true });
      try {
        const write = async (chunks: Buffer[], bytes: number) => {
          const { bytesWritten } = await fh.writev(chunks, Number(offset));
          if (bytesWritten !== bytes) throw Object.assign(new Error(`short write: ${bytesWritten} of ${bytes} bytes`), { code: "EIO" });
          if (hash) for (const c of chunks) hash.update(c);
          offset += BigInt(bytes);
          if (backgroundError) throw backgroundError;
          if (pending) return;
          const since = performance.now() - lastCheckpoint;
          if (since >= o.checkpointMs || (byteStep !== null && offset - durable >= byteStep && since >= 250)) checkpointInBackground(true);
          else if (offset - syncedFrom >= SYNC_AHEAD) checkpointInBackground(false);
        };
        const throttled = o.buckets().some((b) => b);
        await res.body(throttled ? THROTTLED_PIECE : QUEUE_BYTES, () => stall.kick(), async (chunks, bytes) => {
          const buckets = o.buckets();
          if (!buckets.some((b) => b)) return write(chunks, bytes);
          // Throttled: wait for and write at most THROTTLED_PIECE at a time, so that the rate and the
          // progress stay smooth however large the reads were. Waiting on the limit is not a stall.
          for (const piece of pieces(chunks, THROTTLED_PIECE)) {
            await stall.holding(() => throttle(buckets, piece.length, o.signal));
            await write([piece], piece.length);
          }
        });
        await pending;
        if (backgroundError) throw backgroundError;
      } catch (err) {
        stall.clear();
        o.signal.removeEventListener("abort", onAbort);
        if (o.signal.aborted) throw o.signal.reason;
        if (err instanceof TransferFailure) throw err;
        if (err instanceof StallError) throw new TransferFailure({ kind: "timeout", phase: "body", seconds: o.stallSeconds });
        const code = (err as NodeJS.ErrnoException).code;
        if (code && /^E(NOSPC|DQUOT|ACCES|PERM|ROFS|IO|FBIG)$/.test(code)) throw new TransferFailure(failureFromError(err, "local"));
        if (err instanceof BodyEndedEarly) {
          // A clean close (FIN) before Content-Length is a short body; a reset (RST) is a network error.
          if (!err.reset && total !== null && offset < total) {
            throw new TransferFailure({ kind: "shortBody", expected: Number(total), received: Number(offset) });
          }
          if (err.reset && err.cause) throw new TransferFailure(failureFromError(err.cause, "network"));
          throw new TransferFailure({ kind: "network", code: "ECONNRESET", message: "the connection closed before the body ended" });
        }
        throw new TransferFailure(failureFromError(err, "network"));
      }
      stall.clear();
      o.signal.removeEventListener("abort", onAbort);
      if (o.signal.aborted) throw o.signal.reason;
      if (total !== null && offset < total) {
        throw new TransferFailure({ kind: "shortBody", expected: Number(total), received: Number(offset) });
      }
      if (total !== null && offset > total) {
        throw new TransferFailure({ kind: "protocol", message: `received ${offset} bytes, more than the announced ${total}` });
      }
      total = offset;
      break;
    }

    if (hash && t.sha256) {
      const actual = hash.digest("hex");
      if (actual !== t.sha256) {
        await restartFromZero();
        etag = null;
        lastModified = null;
        await checkpoint(false);
        throw new TransferFailure({ kind: "checksum", expected: t.sha256, actual });
      }
    }
    await checkpoint(true);
    return { bytesTransferred: offset, bytesTotal: total, etag, lastModified, finalUrl, done: true };
  } catch (err) {
    // Keep what is on disk: persist the offset reached so the next attempt resumes from it.
    await pending;
    if (offset !== durable && !(err instanceof TransferFailure && err.failure.kind === "checksum")) {
      await checkpoint(false).catch(() => {});
    }
    throw err;
  } finally {
    stall.clear();
    await fh.close().catch(() => {});
  }
}
