// buildApp: the HTTP server (graphql-yoga: queries, mutations, SSE subscriptions, GraphiQL) and the
// graphql-ws WebSocket server on the same port and path, sharing one envelop setup, so masking,
// context and plugins are identical on both transports.
import http from "node:http";
import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import { createYoga } from "graphql-yoga";
import { GraphQLError, type ExecutionArgs } from "graphql";
import { WebSocketServer } from "ws";
import { useWsServer, type Extra } from "./ws.js";
import { schema } from "../graphql/schema/index.js";
import type { Context } from "../graphql/context.js";
import { useAuthentication } from "../graphql/auth-plugin.js";
import { hardeningPlugins, HARDENING_DEFAULTS } from "../graphql/hardening.js";
import { TokenService, TOKENS_CHANNEL, bearer } from "../auth/tokens.js";
import type { Principal } from "../auth/policy.js";
import type { WebSocket } from "ws";
import { AddressPolicy, literalRefusal } from "../transfer/address-policy.js";
import { serveStatic, DASHBOARD_DIST } from "./static.js";
import { createMetrics } from "../observability/metrics.js";
import { useOperationMetrics } from "../observability/operation-metrics.js";
import { useRequestLog } from "../observability/request-log.js";
import { readMigrations } from "../store/migrations.js";
import { toApiError, withRequestErrorCode } from "../graphql/errors.js";
import { createCommands, type Commands } from "../jobs/commands.js";
import { EventFeed } from "../events/feed.js";
import { createMulticast, type Multicast } from "../graphql/multicast.js";
import { FileStorage } from "../files/storage.js";
import type { Database } from "../store/db.js";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import { createReports } from "../jobs/reports.js";
import { Worker, type WorkerOptions } from "../worker/worker.js";

export interface AppDeps {
  config: Pick<Config, "host" | "port" | "storageRoot" | "retryDelayFloorSeconds" | "maxFilesPerJob" | "graphiql"> &
    Partial<Pick<Config, "maxJobsPerUser" | "introspection" | "allowedNetworks">>;
  db: Database;
  logger: Logger;
  feedOptions?: ConstructorParameters<typeof EventFeed>[2];
  /** Run the transfer worker in this process; false = API only. */
  worker?: WorkerOptions | false;
}

/** The worker options from the configuration. */
export function workerOptions(config: Config): WorkerOptions | false {
  if (!config.worker) return false;
  return {
    maxTransfers: config.maxTransfers,
    leaseSeconds: config.leaseSeconds,
    maxBytesPerSecond: config.maxBytesPerSecond,
    stallSeconds: config.stallSeconds,
    inactivitySeconds: config.inactivitySeconds,
    sweepSeconds: 5,
    progressIntervalMs: 500,
    maxRedirects: 10,
  };
}

export interface App {
  /** Listens on config.host:config.port (port 0 = any free port); resolves to the base URL. */
  start(): Promise<string>;
  /** Closes sockets and stops the event feed; does not close the database. */
  stop(): Promise<void>;
  readonly url: string;
  readonly commands: Commands;
  readonly feed: EventFeed;
  readonly server: http.Server;
  readonly worker: Worker | null;
  readonly tokens: TokenService;
  /** Shared execution of subscription events (groups of subscribers). */
  readonly multicast: Multicast;
}

export function buildApp(deps: AppDeps): App {
  const { config, db, logger } = deps;
  const storage = new FileStorage(config.storageRoot);
  const policy = new AddressPolicy(config.allowedNetworks ?? []);
  let metricsRef: ReturnType<typeof createMetrics> | null = null;
  const feed = new EventFeed(db, logger, { ...deps.feedOptions, onDispatch: (e) => metricsRef?.onEvent(e) });
  const commands = createCommands({
    prisma: db.prisma,
    storage,
    afterCommit: (seq) => feed.poke(seq),
    logger,
    limits: { retryDelayFloorSeconds: config.retryDelayFloorSeconds, maxFilesPerJob: config.maxFilesPerJob, maxJobsPerUser: config.maxJobsPerUser },
    checkUrl: (url) => {
      const r = literalRefusal(policy, url);
      return r ? `haul may not fetch from ${r.address} (${r.reason} address); an operator can allow it with HAUL_ALLOWED_NETWORKS` : null;
    },
  });
  const tokens = new TokenService(db.prisma, logger);
  const contextDeps = { prisma: db.prisma, db, commands, feed, tokens };
  const worker = deps.worker
    ? new Worker({
        reports: createReports({ db, storage, afterCommit: (seq) => feed.poke(seq) }),
        feed,
        storage,
        logger,
        options: { ...deps.worker, policy },
        onBytes: (n) => metricsRef?.onBytes(n),
      })
    : null;
  const metrics = createMetrics({
    prisma: db.prisma,
    activeTransfers: () => worker?.activeJobs ?? 0,
    openSubscriptions: () => feed.subscriberCount + feed.progress.size,
  });
  metricsRef = metrics;
  const multicast = createMulticast({ mask: (e) => maskError(e) });

  const yoga = createYoga<{ req?: http.IncomingMessage; requestId?: string }, Context>({
    schema,
    graphqlEndpoint: "/graphql",
    landingPage: false,
    graphiql: config.graphiql ? { title: "haul", subscriptionsProtocol: "WS" } : false,
    logging: {
      debug: (...a) => logger.debug({ yoga: a.map(String) }, "yoga"),
      info: (...a) => logger.info({ yoga: a.map(String) }, "yoga"),
      warn: (...a) => logger.warn({ yoga: a.map(String) }, "yoga"),
      error: (...a) => logger.error({ yoga: a.map(String) }, "yoga"),
    },
    // HTTP and SSE: the Authorization header. WebSocket: the principal found at connection_init
    // (see onConnect below), passed in by onSubscribe.
    context: async (initial: { request?: Request; principal?: Principal | null; requestId?: string }) => ({
      ...contextDeps,
      requestId: initial.requestId ?? randomUUID(),
      principal:
        initial.principal !== undefined ? initial.principal : await tokens.authenticate(bearer(initial.request?.headers.get("authorization"))),
    }),
    plugins: [
      ...(hardeningPlugins({ ...HARDENING_DEFAULTS, introspection: config.introspection ?? true }) as never[]),
      useAuthentication(),
      multicast.plugin as never,
      useOperationMetrics(metrics),
      useRequestLog(logger) as never,
    ],
    maxRequestBodySize: 1024 * 1024, // 413 REQUEST_ENTITY_TOO_LARGE beyond 1 MiB
    batching: false, // an array of operations in one request is refused (no amplification)
    multipart: false, // haul takes no uploads
    maskedErrors: { maskError },
  });

  function maskError(error: unknown): GraphQLError {
    const raw = error instanceof GraphQLError ? (error.originalError ?? error) : error;
    if (raw instanceof SyntaxError) {
      // e.g. GET /graphql?variables=not-json: the client's mistake, not ours
      return new GraphQLError(`malformed request parameters: ${raw.message}`, { extensions: { code: "BAD_REQUEST", http: { status: 400 } } });
    }
    if (!(error instanceof GraphQLError)) return internal(error);
    if (!error.originalError) {
      // Raised by graphql-js or yoga itself (parse, validation, variable coercion).
      return withRequestErrorCode(error);
    }
    if (error.originalError instanceof GraphQLError) {
      // An argument or variable failed to parse (an enum value, one of our scalars): keep the
      // outer message, which names the variable, and the inner code if it has one.
      const code = error.originalError.extensions?.code ?? "BAD_USER_INPUT";
      return new GraphQLError(error.message, { nodes: error.nodes, path: error.path, extensions: { ...error.extensions, code } });
    }
    const known = toApiError(error.originalError);
    if (known) {
      return new GraphQLError(known.message, { nodes: error.nodes, path: error.path, extensions: { ...known.extensions } });
    }
    return internal(error.originalError, error);
  }

  function internal(err: unknown, located?: GraphQLError): GraphQLError {
    const correlationId = randomUUID();
    logger.error({ err, correlationId }, "unexpected error in a GraphQL operation");
    return new GraphQLError("Unexpected error.", {
      nodes: located?.nodes,
      path: located?.path,
      extensions: { code: "INTERNAL", correlationId },
    });
  }

  const dashboard = serveStatic(DASHBOARD_DIST);
  const server = http.createServer((req, res) => {
    if (req.url === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      return;
    }
    if (req.url === "/readyz") {
      void ready().then(
        (why) => res.writeHead(why ? 503 : 200, { "content-type": "text/plain" }).end(why ? `not ready: ${why}\n` : "ready\n"),
        (err) => res.writeHead(503, { "content-type": "text/plain" }).end(`not ready: ${(err as Error).message}\n`),
      );
      return;
    }
    if (req.url === "/metrics") {
      void metrics.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(text),
        (err) => res.writeHead(500, { "content-type": "text/plain" }).end(`metrics failed: ${(err as Error).message}\n`),
      );
      return;
    }
    if (dashboard(req, res)) return; // the web dashboard at / (built by npm install)
    const requestId = String(req.headers["x-request-id"] ?? "").slice(0, 100) || randomUUID();
    res.setHeader("x-request-id", requestId);
    void yoga.handle(req, res, { requestId });
  });

  /** null when ready; otherwise why not: the database must answer and every migration be applied. */
  async function ready(): Promise<string | null> {
    const expected = readMigrations().migrationDirectories.map((d) => d.path);
    const rows = await db.prisma.$queryRawUnsafe<{ migration_name: string }[]>(
      `SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
    );
    const applied = new Set(rows.map((r) => r.migration_name));
    const missing = expected.filter((m) => !applied.has(m));
    return missing.length ? `migrations not applied: ${missing.join(", ")}` : null;
  }

  // No per-message compression: every message would be deflated per socket (CPU, and a zlib context of
  // tens of KB per connection).
  const wss = new WebSocketServer({ server, path: "/graphql", maxPayload: 1024 * 1024, perMessageDeflate: false, clientTracking: true });
  // Live sockets by the token that authenticated them: revoking a token closes them.
  const socketsByToken = new Map<string, Set<WebSocket>>();
  const closeRevoked = (tokenId: string) => {
    for (const sock of socketsByToken.get(tokenId) ?? []) sock.close(4401, "token revoked");
    socketsByToken.delete(tokenId);
  };
  tokens.onRevoked(closeRevoked);
  // Safety net for a missed notification: look every 2 s (revocation must bite within 5 s).
  const revocationCheck = setInterval(() => {
    const ids = [...socketsByToken.keys()];
    if (ids.length) void tokens.revokedAmong(ids).then((gone) => gone.forEach(closeRevoked)).catch(() => {});
  }, 2000);
  revocationCheck.unref();
  const wsServer = useWsServer<Extra & { principal?: Principal | null }>(
    {
      // The token: connection_init payload { authorization: "Bearer ..." }, else the upgrade request's header.
      onConnect: async (ctx) => {
        const fromPayload = typeof ctx.connectionParams?.authorization === "string" ? ctx.connectionParams.authorization : null;
        const principal = await tokens.authenticate(bearer(fromPayload ?? ctx.extra.authorization));
        ctx.extra.principal = principal;
        if (principal) {
          const set = socketsByToken.get(principal.tokenId) ?? new Set();
          set.add(ctx.extra.socket);
          socketsByToken.set(principal.tokenId, set);
          ctx.extra.socket.once("close", () => set.delete(ctx.extra.socket));
        }
        return true; // without a valid token, every operation on this socket answers UNAUTHENTICATED
      },
      execute: (args) => (args.rootValue as { execute: (a: ExecutionArgs) => unknown }).execute(args) as never,
      subscribe: (args) => (args.rootValue as { subscribe: (a: ExecutionArgs) => unknown }).subscribe(args) as never,
      onSubscribe: async (ctx, id, params) => {
        const { schema: s, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          socket: ctx.extra.socket,
          principal: ctx.extra.principal ?? null,
          params,
          // where shared subscription results are written (src/graphql/multicast.ts)
          push: { socket: ctx.extra.socket, id, active: () => id in ctx.subscriptions },
        });
        let document;
        try {
          document = parse(params.query);
        } catch (err) {
          // A syntax error answers this subscription with an error message; the socket stays open.
          return [withRequestErrorCode(err instanceof GraphQLError ? err : new GraphQLError(String(err)))];
        }
        const errors = validate(s, document);
        if (errors.length) return errors.map(withRequestErrorCode);
        return {
          schema: s,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
      },
    },
    wss,
    15_000, // keep-alive ping interval (ms)
    (base) => base,
  );

  let url = "";
  let unlistenTokens: (() => Promise<void>) | null = null;
  return {
    get url() {
      return url;
    },
    commands,
    feed,
    server,
    worker,
    tokens,
    multicast,
    async start() {
      await feed.start();
      unlistenTokens = await db.listen(TOKENS_CHANNEL, (id) => tokens.onNotify(id));
      worker?.start();
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(config.port, config.host, () => {
          server.off("error", reject);
          resolve();
        });
      });
      const addr = server.address() as AddressInfo;
      const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
      url = `http://${host}:${addr.port}`;
      return url;
    },
    async stop() {
      await worker?.stop();
      await feed.stop();
      clearInterval(revocationCheck);
      await unlistenTokens?.();
      await Promise.resolve(wsServer.dispose()).catch(() => {});
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
