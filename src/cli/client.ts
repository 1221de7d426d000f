// The CLI's connection to a haul server: where it is, which token to send, GraphQL over HTTP (fetch)
// for queries and mutations, and GraphQL over WebSocket (graphql-ws) for subscriptions, with a
// reconnect loop that lets each subscription choose its variables again at every reconnect (so a
// stream of transitions resumes from its last cursor). Only the public API: nothing here knows the
// server's internals.
import fs from "node:fs";
import path from "node:path";
import { print } from "graphql";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import type { TadaDocumentNode } from "./graphql.js";

export const DEFAULT_URL = "http://127.0.0.1:4000";

/** An error the CLI reports as `haul: <message> (<code>)` and exits with `exitCode`. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly code?: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = "CliError";
  }
}

export interface ConnectionOptions {
  url?: string;
  token?: string;
}

export interface Connection {
  /** As given (or the default), for messages. */
  url: string;
  graphqlUrl: string;
  wsUrl: string;
  token: string;
  /** Where the token came from, for messages: --token, HAUL_TOKEN or the admin-token file. */
  tokenSource: string;
}

/**
 * The server and token: flags first, then HAUL_URL / HAUL_TOKEN, then the admin token the server
 * wrote at its first start (<HAUL_DATA_DIR or ./.haul>/admin-token), as for a local install.
 */
export function resolveConnection(opts: ConnectionOptions, env: NodeJS.ProcessEnv = process.env): Connection {
  const url = (opts.url ?? env.HAUL_URL ?? DEFAULT_URL).trim();
  let base: URL;
  try {
    base = new URL(url);
  } catch {
    throw new CliError(`not a valid server URL: ${JSON.stringify(url)} (e.g. ${DEFAULT_URL})`, "BAD_USER_INPUT", 2);
  }
  if (base.protocol !== "http:" && base.protocol !== "https:") {
    throw new CliError(`the server URL must be http(s): ${url}`, "BAD_USER_INPUT", 2);
  }
  // Accept both http://host:port and http://host:port/graphql.
  if (!/\/graphql\/?$/.test(base.pathname)) base.pathname = `${base.pathname.replace(/\/+$/, "")}/graphql`;
  const graphqlUrl = base.toString();
  const ws = new URL(graphqlUrl);
  ws.protocol = ws.protocol === "https:" ? "wss:" : "ws:";

  let token = opts.token?.trim() || undefined;
  let tokenSource = "--token";
  if (!token && env.HAUL_TOKEN?.trim()) {
    token = env.HAUL_TOKEN.trim();
    tokenSource = "HAUL_TOKEN";
  }
  if (!token) {
    const file = path.resolve(env.HAUL_DATA_DIR || ".haul", "admin-token");
    try {
      token = fs.readFileSync(file, "utf8").trim() || undefined;
      tokenSource = file;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT") throw new CliError(`cannot read the admin token in ${file}: ${(err as Error).message}`, "UNAUTHENTICATED");
    }
    if (!token) {
      throw new CliError(
        `no API token: pass --token or set HAUL_TOKEN (or set HAUL_DATA_DIR to the server's data directory; there is no ${file})`,
        "UNAUTHENTICATED",
      );
    }
  }
  return { url, graphqlUrl, wsUrl: ws.toString(), token, tokenSource };
}

interface WireError {
  message?: string;
  extensions?: { code?: string; [k: string]: unknown };
}

/** The first error of a GraphQL response as a CliError (message and extensions.code). */
export function apiError(errors: readonly WireError[], fallbackCode?: string): CliError {
  const first = errors[0] ?? {};
  const code = typeof first.extensions?.code === "string" ? first.extensions.code : fallbackCode;
  let message = first.message ?? "the server answered with an error";
  const correlationId = first.extensions?.correlationId;
  if (typeof correlationId === "string") message += ` (correlation id ${correlationId})`;
  if (errors.length > 1) message += ` (and ${errors.length - 1} more error${errors.length > 2 ? "s" : ""})`;
  return new CliError(message, code);
}

function describeNetworkError(err: unknown): string {
  const cause = (err as { cause?: unknown })?.cause ?? err;
  const c = cause as { code?: string; message?: string; errors?: { code?: string }[] };
  return c?.code ?? c?.errors?.[0]?.code ?? c?.message ?? String(cause);
}

export class Api {
  constructor(readonly conn: Connection) {}

  /** Runs a query or mutation; the data, or a CliError with the API's message and code. */
  async request<R, V>(doc: TadaDocumentNode<R, V>, variables: V, timeoutMs = 60_000): Promise<R> {
    let res: Response;
    try {
      res = await fetch(this.conn.graphqlUrl, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/graphql-response+json, application/json",
          authorization: `Bearer ${this.conn.token}`,
        },
        body: JSON.stringify({ query: print(doc), variables }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      if ((err as Error)?.name === "TimeoutError") {
        throw new CliError(`the server at ${this.conn.url} did not answer within ${timeoutMs / 1000} s`, "TIMEOUT");
      }
      throw new CliError(`the server is unreachable at ${this.conn.url} (${describeNetworkError(err)})`, "UNREACHABLE");
    }
    const text = await res.text();
    let body: { data?: R | null; errors?: WireError[] };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new CliError(
        `unexpected answer from ${this.conn.graphqlUrl}: HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ""} (is this a haul server?)`,
        `HTTP_${res.status}`,
      );
    }
    if (body.errors?.length) throw apiError(body.errors, `HTTP_${res.status}`);
    if (body.data == null) throw new CliError(`the server answered HTTP ${res.status} without data`, `HTTP_${res.status}`);
    return body.data;
  }

  /** A WebSocket session for subscriptions; see LiveSession. */
  live(opts: LiveOptions = {}): LiveSession {
    return new LiveSession(this.conn, opts);
  }
}

// ---- subscriptions -------------------------------------------------------------------------------

export interface LiveOptions {
  /** Reconnect after the connection drops (once it has been established at least once). Default true. */
  reconnect?: boolean;
  /** First reconnect delay; doubles per failed attempt up to maxDelayMs (with jitter). */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Called at every connection_ack; `reconnected` is false the first time. */
  onConnected?: (reconnected: boolean) => void;
  /** Called when the connection is lost and a reconnect is scheduled. */
  onDisconnected?: (reason: string, retryInMs: number) => void;
}

interface Registration {
  doc: TadaDocumentNode<any, any>;
  variables: () => unknown;
  next: (data: any) => void;
}

/** WebSocket close codes after which reconnecting cannot help. */
const FATAL_CLOSE: Record<number, { code: string; message: string }> = {
  4400: { code: "BAD_REQUEST", message: "the server refused the WebSocket message" },
  4401: { code: "UNAUTHENTICATED", message: "the token was revoked or is not valid" },
  4403: { code: "FORBIDDEN", message: "the server closed the WebSocket: forbidden" },
  4406: { code: "BAD_REQUEST", message: "the server does not speak the graphql-ws protocol" },
  1009: { code: "REQUEST_ENTITY_TOO_LARGE", message: "a WebSocket message was too large" },
};

function isCloseEvent(e: unknown): e is { code: number; reason?: string } {
  return !!e && typeof e === "object" && typeof (e as { code?: unknown }).code === "number";
}

/**
 * One logical WebSocket session holding any number of subscriptions. The transport is graphql-ws
 * with its own retries off: when the socket drops, this opens a new client and subscribes again,
 * asking each subscription for its variables anew (a cursor moves on). `done` resolves on close()
 * and rejects with a CliError on anything fatal (a GraphQL error, a revoked token, a server that
 * was never reachable).
 */
export class LiveSession {
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private rejectDone!: (e: CliError) => void;
  private readonly regs: Registration[] = [];
  private client: Client | null = null;
  private generation = 0;
  private everConnected = false;
  private failures = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private firstConnected: (() => void) | null = null;

  constructor(
    private readonly conn: Connection,
    private readonly opts: LiveOptions,
  ) {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    this.done.catch(() => {}); // observed by whoever awaits it
  }

  /** Adds a subscription; `variables` is called at every (re)subscribe. Call before start(). */
  subscribe<R, V>(doc: TadaDocumentNode<R, V>, variables: () => V, next: (data: R) => void): this {
    this.regs.push({ doc, variables, next });
    return this;
  }

  /** Opens the connection; resolves at the first connection_ack (or rejects as `done` does). */
  start(): Promise<void> {
    const connected = new Promise<void>((resolve, reject) => {
      this.firstConnected = resolve;
      this.done.then(resolve, reject);
    });
    this.open();
    return connected;
  }

  close(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    void this.client?.dispose();
    this.client = null;
    this.resolveDone();
  }

  private fail(err: CliError): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    void this.client?.dispose();
    this.client = null;
    this.rejectDone(err);
  }

  private open(): void {
    const gen = ++this.generation;
    let pongTimer: NodeJS.Timeout | null = null;
    let socketError: unknown = null;
    const current = () => gen === this.generation && !this.stopped;
    const client = createClient({
      url: this.conn.wsUrl,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${this.conn.token}` },
      lazy: true,
      retryAttempts: 0,
      keepAlive: 10_000,
      connectionAckWaitTimeout: 15_000,
      on: {
        connected: () => {
          if (!current()) return;
          const reconnected = this.everConnected;
          this.everConnected = true;
          this.failures = 0;
          this.opts.onConnected?.(reconnected);
          this.firstConnected?.();
          this.firstConnected = null;
        },
        // A ping without a pong within 10 s: the connection is dead (half-open); drop it.
        ping: (received) => {
          if (received) return;
          if (pongTimer) clearTimeout(pongTimer);
          pongTimer = setTimeout(() => client.terminate(), 10_000);
          pongTimer.unref();
        },
        pong: (received) => {
          if (received && pongTimer) clearTimeout(pongTimer);
        },
        error: (err) => {
          socketError = err;
        },
        closed: (ev) => {
          if (pongTimer) clearTimeout(pongTimer);
          // An abnormal close (1006) after a socket error: the error says more (ECONNREFUSED, ...).
          if (current()) this.dropped(socketError && isCloseEvent(ev) && ev.code === 1006 ? socketError : ev);
        },
      },
    });
    this.client = client;
    for (const reg of this.regs) {
      client.subscribe(
        { query: print(reg.doc), variables: reg.variables() as Record<string, unknown> },
        {
          next: (result) => {
            if (!current()) return;
            if (result.errors?.length) {
              this.fail(apiError(result.errors));
              return;
            }
            if (result.data) reg.next(result.data);
          },
          error: (err) => {
            if (!current()) return;
            // GraphQL errors (an `error` message) are final; socket trouble is handled by `closed`.
            if (Array.isArray(err)) this.fail(apiError(err as WireError[]));
          },
          complete: () => {
            // The server ended the stream (e.g. it is shutting down): subscribe again.
            if (current()) this.dropped({ code: 1000, reason: "the server ended the subscription" });
          },
        },
      );
    }
  }

  private dropped(ev: unknown): void {
    const old = this.client;
    this.client = null;
    this.generation++; // late events of the old client are ignored
    void old?.dispose();
    if (isCloseEvent(ev) && FATAL_CLOSE[ev.code]) {
      const f = FATAL_CLOSE[ev.code]!;
      this.fail(new CliError(`${f.message}${ev.reason ? ` (${ev.reason})` : ""}`, f.code));
      return;
    }
    const reason = isCloseEvent(ev) ? `code ${ev.code}${ev.reason ? `: ${ev.reason}` : ""}` : describeNetworkError(ev);
    if (!this.everConnected) {
      this.fail(new CliError(`the server is unreachable at ${this.conn.url} (WebSocket ${this.conn.wsUrl}: ${reason})`, "UNREACHABLE"));
      return;
    }
    if (this.opts.reconnect === false) {
      this.fail(new CliError(`lost the connection to ${this.conn.url} (${reason})`, "UNREACHABLE"));
      return;
    }
    const base = this.opts.initialDelayMs ?? 250;
    const max = this.opts.maxDelayMs ?? 10_000;
    const exp = Math.min(max, base * 2 ** Math.min(this.failures, 20));
    const delay = Math.round(exp / 2 + (Math.random() * exp) / 2);
    this.failures++;
    this.opts.onDisconnected?.(reason, delay);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.stopped) this.open();
    }, delay);
  }
}
