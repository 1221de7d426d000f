// Subscription clients for tests: graphql-ws over WebSocket, GraphQL over SSE (parsed by hand), a raw
// graphql-transport-ws socket for protocol-level checks, bounded waits, and a second haul process.
// Every wait has a deadline; nothing here sleeps for correctness.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createClient, type Client } from "graphql-ws";
import { authHeader, defaultToken, ensureTestTokens, setDefaultToken } from "./auth.js";
import WebSocket from "ws";

export const DEFAULT_WAIT_MS = 10_000;

export interface GqlError {
  message: string;
  path?: (string | number)[];
  extensions?: { code?: string; [k: string]: unknown };
}

export interface Payload<T = any> {
  data?: T | null;
  errors?: GqlError[];
}

/** Rejects with a message naming `label` when `p` has not settled within `ms`. */
export async function withTimeout<T>(p: Promise<T>, label: string, ms = DEFAULT_WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${label}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `cond` (sync or async) until it is truthy; fails after `ms` with `label` and the last detail. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  label: string,
  opts: { ms?: number; intervalMs?: number; detail?: () => string } = {},
): Promise<void> {
  const deadline = Date.now() + (opts.ms ?? DEFAULT_WAIT_MS);
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${opts.ms ?? DEFAULT_WAIT_MS} ms waiting for: ${label}${opts.detail ? ` (${opts.detail()})` : ""}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 10));
  }
}

/** What one subscription received, in order, with the local receive time of each payload. */
export class Collector<T = any> {
  readonly payloads: Payload<T>[] = [];
  /** performance.now() at receipt of each payload. */
  readonly receivedAt: number[] = [];
  /** Date.now() at receipt of each payload (to compare with server timestamps). */
  readonly receivedWall: number[] = [];
  /** Errors delivered as an `error` message / sink.error (graphql-ws) or a transport failure. */
  readonly errors: unknown[] = [];
  completed = false;
  private listeners = new Set<() => void>();

  push(p: Payload<T>): void {
    this.payloads.push(p);
    this.receivedAt.push(performance.now());
    this.receivedWall.push(Date.now());
    this.changed();
  }
  fail(err: unknown): void {
    this.errors.push(err);
    this.changed();
  }
  complete(): void {
    this.completed = true;
    this.changed();
  }
  private changed(): void {
    for (const l of [...this.listeners]) l();
  }

  /** The `data` of every payload that has data (in order). */
  get data(): T[] {
    return this.payloads.filter((p) => p.data != null).map((p) => p.data as T);
  }

  /** Every GraphQL error received, from `next` payloads and from `error` messages. */
  get graphqlErrors(): GqlError[] {
    const out: GqlError[] = [];
    for (const p of this.payloads) out.push(...(p.errors ?? []));
    for (const e of this.errors) {
      if (Array.isArray(e)) out.push(...(e as GqlError[]));
      else if (e && typeof e === "object" && "message" in e) out.push(e as GqlError);
    }
    return out;
  }

  /** Resolves when `pred` holds (checked on every change); rejects after `ms`. */
  until(pred: (c: this) => boolean, label: string, ms = DEFAULT_WAIT_MS): Promise<void> {
    if (pred(this)) return Promise.resolve();
    let l: () => void = () => {};
    return withTimeout(
      new Promise<void>((resolve) => {
        l = () => {
          if (pred(this)) resolve();
        };
        this.listeners.add(l);
      }),
      label,
      ms,
    )
      .catch((err: Error) => {
        throw new Error(
          `${err.message} (have ${this.payloads.length} payloads, ${this.errors.length} errors, completed=${this.completed}; last: ${JSON.stringify(this.payloads.slice(-3))} ${this.errors.map((e) => JSON.stringify(e) ?? String(e)).join("; ")})`,
        );
      })
      .finally(() => this.listeners.delete(l));
  }

  untilData(n: number, label = `${n} events`, ms = DEFAULT_WAIT_MS): Promise<void> {
    return this.until((c) => c.data.length >= n || c.errors.length > 0 || c.graphqlErrors.length > 0, label, ms).then(() => {
      if (this.data.length < n) {
        throw new Error(`${label}: the subscription failed instead: ${JSON.stringify(this.graphqlErrors)} ${this.errors.map(String).join("; ")}`);
      }
    });
  }

  /** Resolves once an error has arrived (or the subscription ended). */
  untilErrorOrEnd(label: string, ms = DEFAULT_WAIT_MS): Promise<void> {
    return this.until((c) => c.graphqlErrors.length > 0 || c.errors.length > 0 || c.completed, label, ms);
  }
}

// ---- graphql-ws -------------------------------------------------------------------------------

export interface WsClient {
  client: Client;
  /** How many times the socket was opened (connection_ack) and closed. */
  stats: { connected: number; closed: number; closeEvents: unknown[] };
  subscribe<T = any>(query: string, variables?: Record<string, unknown>): { events: Collector<T>; unsubscribe: () => void };
  dispose(): Promise<void>;
}

/** A graphql-ws client that never retries and keeps its socket open (lazy: false), so closes are visible. */
/** `token`: undefined = the server's default test token; null = none. */
export async function connectWs(url: string, token?: string | null): Promise<WsClient> {
  const t = token === undefined ? defaultToken(url) : token;
  const stats = { connected: 0, closed: 0, closeEvents: [] as unknown[] };
  let connectedResolve!: () => void;
  let connectedReject!: (e: unknown) => void;
  const connected = new Promise<void>((res, rej) => {
    connectedResolve = res;
    connectedReject = rej;
  });
  const client = createClient({
    url,
    webSocketImpl: WebSocket,
    connectionParams: t ? { authorization: `Bearer ${t}` } : {},
    lazy: false,
    retryAttempts: 0,
    onNonLazyError: (err) => connectedReject(err),
    on: {
      connected: () => {
        stats.connected++;
        connectedResolve();
      },
      closed: (ev) => {
        stats.closed++;
        stats.closeEvents.push(ev);
        connectedReject(new Error(`socket closed before connecting: ${describeClose(ev)}`));
      },
    },
  });
  let disposed = false;
  const dispose = async () => {
    if (disposed) return;
    disposed = true;
    await client.dispose();
  };
  try {
    await withTimeout(connected, `WebSocket connection to ${url}`);
  } catch (err) {
    await dispose();
    throw err;
  }
  return {
    client,
    stats,
    subscribe<T>(query: string, variables?: Record<string, unknown>) {
      const events = new Collector<T>();
      const unsubscribe = client.subscribe<T>(
        { query, variables },
        {
          next: (v) => events.push(v as Payload<T>),
          error: (e) => events.fail(e),
          complete: () => events.complete(),
        },
      );
      return { events, unsubscribe };
    },
    dispose,
  };
}

function describeClose(ev: unknown): string {
  const e = ev as { code?: number; reason?: string } | undefined;
  return e && typeof e === "object" ? `code ${e.code} ${e.reason ?? ""}` : String(ev);
}

// ---- SSE ----------------------------------------------------------------------------------------

export interface SseSubscription<T = any> {
  events: Collector<T>;
  /** HTTP status and content type, once the response head has arrived. */
  response: Promise<{ status: number; contentType: string }>;
  close(): Promise<void>;
}

/**
 * GraphQL over SSE (distinct connections): POST with `Accept: text/event-stream`, frames parsed by hand.
 * `event: next` frames are pushed, `event: complete` completes; a non-SSE response body (a plain JSON
 * result, e.g. a request error) is pushed as one payload, then complete.
 */
export function subscribeSse<T = any>(url: string, query: string, variables?: Record<string, unknown>, token?: string | null): SseSubscription<T> {
  const events = new Collector<T>();
  const abort = new AbortController();
  let head!: (h: { status: number; contentType: string }) => void;
  let headFailed!: (e: unknown) => void;
  const response = new Promise<{ status: number; contentType: string }>((res, rej) => {
    head = res;
    headFailed = rej;
  });
  response.catch(() => {}); // observed by whoever awaits it
  let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  const done = (async () => {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream", ...authHeader(url, token) },
      body: JSON.stringify({ query, variables }),
      signal: abort.signal,
    });
    const contentType = res.headers.get("content-type") ?? "";
    head({ status: res.status, contentType });
    if (!contentType.includes("text/event-stream")) {
      const text = await res.text();
      try {
        events.push(JSON.parse(text) as Payload<T>);
      } catch {
        events.fail(new Error(`HTTP ${res.status}: ${text.slice(0, 500)}`));
      }
      events.complete();
      return;
    }
    const decoder = new TextDecoder();
    let buf = "";
    reader = res.body!.getReader();
    for (;;) {
      const { done: ended, value: chunk } = await reader.read();
      if (ended) break;
      buf += decoder.decode(chunk, { stream: true }).replace(/\r\n?/g, "\n");
      let i: number;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const frame = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let event = "message";
        const data: string[] = [];
        for (const line of frame.split("\n")) {
          if (line === "" || line.startsWith(":")) continue; // keep-alive comment
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? "" : line.slice(colon + 1);
          if (value.startsWith(" ")) value = value.slice(1);
          if (field === "event") event = value;
          else if (field === "data") data.push(value);
        }
        if (event === "complete") {
          events.complete();
          continue;
        }
        if ((event === "next" || event === "message") && data.length) {
          events.push(JSON.parse(data.join("\n")) as Payload<T>);
        }
      }
    }
    events.complete();
  })().catch((err) => {
    headFailed(err);
    if (!abort.signal.aborted) events.fail(err);
  });
  return {
    events,
    response,
    async close() {
      abort.abort();
      // Cancelling the reader too: an abort racing the end of the body can leave undici's pending read
      // unsettled.
      await reader?.cancel().catch(() => {});
      await withTimeout(done, "SSE stream to close", 5_000);
    },
  };
}

// ---- raw graphql-transport-ws socket ---------------------------------------------------------------

export interface RawMessage {
  type: string;
  id?: string;
  payload?: any;
}

/** A bare graphql-transport-ws socket: you see every message, with its id. */
export interface RawWs {
  messages: RawMessage[];
  closed: { code: number; reason: string } | null;
  send(msg: RawMessage): void;
  until(pred: (m: RawMessage[]) => boolean, label: string, ms?: number): Promise<void>;
  close(): Promise<void>;
}

/** The token goes in the upgrade request's Authorization header. */
export async function connectRawWs(url: string, token?: string | null): Promise<RawWs> {
  const ws = new WebSocket(url, "graphql-transport-ws", { headers: authHeader(url, token) });
  const messages: RawMessage[] = [];
  const listeners = new Set<() => void>();
  const raw: RawWs = {
    messages,
    closed: null,
    send: (msg) => ws.send(JSON.stringify(msg)),
    until(pred, label, ms = DEFAULT_WAIT_MS) {
      if (pred(messages)) return Promise.resolve();
      let l: () => void = () => {};
      return withTimeout(
        new Promise<void>((resolve) => {
          l = () => {
            if (pred(messages)) resolve();
          };
          listeners.add(l);
        }),
        label,
        ms,
      )
        .catch((err: Error) => {
          throw new Error(`${err.message} (messages: ${JSON.stringify(messages).slice(0, 1500)}; closed: ${JSON.stringify(raw.closed)})`);
        })
        .finally(() => listeners.delete(l));
    },
    async close() {
      if (ws.readyState === WebSocket.CLOSED) return;
      const closed = new Promise<void>((r) => ws.once("close", () => r()));
      ws.close(1000);
      await withTimeout(closed, "raw socket close").catch(() => ws.terminate());
    },
  };
  ws.on("message", (data) => {
    messages.push(JSON.parse(String(data)) as RawMessage);
    for (const l of [...listeners]) l();
  });
  ws.on("close", (code, reason) => {
    raw.closed = { code, reason: String(reason) };
    for (const l of [...listeners]) l();
  });
  ws.on("error", () => {}); // surfaced as a close
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    }),
    `raw WebSocket open ${url}`,
  );
  raw.send({ type: "connection_init", payload: {} });
  await raw.until((m) => m.some((x) => x.type === "connection_ack"), "connection_ack");
  return raw;
}

// ---- a second haul process ----------------------------------------------------------------------

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** A port that was free a moment ago (listen on 0, read it, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface ChildServer {
  child: ChildProcess;
  url: string;
  graphqlUrl: string;
  wsUrl: string;
  /** stdout+stderr so far (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

/** `node --import tsx src/main.ts` on `databaseUrl`, waits until /healthz answers. */
export async function startChildServer(databaseUrl: string, opts: { startupMs?: number; logLevel?: string; worker?: boolean } = {}): Promise<ChildServer> {
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "haul-child-"));
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      HOST: "127.0.0.1",
      PORT: String(port),
      HAUL_MIGRATE_ON_START: "false",
      HAUL_ALLOWED_NETWORKS: "127.0.0.0/8,::1/128",
      // API only: a transfer worker would move QUEUED jobs on by itself (HAUL_WORKER=off).
      HAUL_WORKER: opts.worker ? "true" : "false",
      HAUL_LOG_LEVEL: opts.logLevel ?? "warn",
      HAUL_DATA_DIR: dataDir,
      HAUL_STORAGE_ROOT: path.join(dataDir, "files"),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += String(d)));
  child.stderr!.on("data", (d) => (out += String(d)));
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exitPromise = new Promise<void>((r) =>
    child.once("exit", (code, signal) => {
      exited = { code, signal };
      r();
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  // If this process dies without running stop(), take the child with it.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  const stop = async () => {
    process.off("exit", killOnExit);
    if (!exited) {
      child.kill("SIGTERM");
      const killed = await withTimeout(exitPromise, "child SIGTERM", 5_000).then(
        () => true,
        () => false,
      );
      if (!killed) {
        child.kill("SIGKILL");
        await withTimeout(exitPromise, "child SIGKILL", 5_000).catch(() => {});
      }
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (exited) throw new Error(`the second server exited early (${JSON.stringify(exited)}): ${out}`);
        try {
          const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
          return res.ok;
        } catch {
          return false;
        }
      },
      `second server /healthz on ${url}`,
      { ms: opts.startupMs ?? 30_000, intervalMs: 100, detail: () => out.slice(-2000) },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  setDefaultToken(url, (await ensureTestTokens(databaseUrl)).userToken);
  return { child, url, graphqlUrl: `${url}/graphql`, wsUrl: `ws://127.0.0.1:${port}/graphql`, output: () => out, stop };
}
