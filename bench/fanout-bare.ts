// The baseline of the fan-out benchmark (bench/fanout.ts): a bare graphql-yoga + graphql-ws server
// with an in-memory pub/sub (yoga's createPubSub) and the same subscription shape as haul's
// `jobStateChanged { cursor state at job { id state } }`, wired the way graphql-yoga documents for
// graphql-ws (one envelop per operation), also serving SSE (yoga's own). No database, no
// authentication, no plugins: what any yoga + graphql-ws server pays to push an event.
//
// `mutation { transition(jobId: "j1", state: "QUEUED") }` publishes one event whose `at` is the moment
// of the publish (haul's `at` is the moment of the transition, inside its transaction, before commit).
// With `raw: true` the event is instead executed and serialised ONCE and the same JSON is written to
// every subscription's socket (only the graphql-ws message id differs): a diagnostic of what
// "execute once per document and scope, not once per subscriber" could reach on the same load.
//
//   node --import tsx bench/fanout-bare.ts      prints {"url":"http://127.0.0.1:<port>"} once listening
//
// It exits on SIGTERM/SIGINT or when stdin ends (the parent closed it, or died).
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createPubSub, createSchema, createYoga } from "graphql-yoga";
import type { ExecutionArgs } from "graphql";
import { WebSocketServer, type WebSocket } from "ws";
import { useServer } from "graphql-ws/use/ws";

interface Event {
  cursor: string;
  state: string;
  at: string;
  job: { id: string; state: string };
}

const pubSub = createPubSub<{ jobStateChanged: [Event] }>();
let seq = 0;

const schema = createSchema({
  typeDefs: /* GraphQL */ `
    type Job {
      id: ID!
      state: String!
    }
    type JobStateChange {
      cursor: String!
      state: String!
      at: String!
      job: Job!
    }
    type Query {
      hello: String!
    }
    type Mutation {
      transition(jobId: ID!, state: String!, raw: Boolean): String!
    }
    type Subscription {
      jobStateChanged: JobStateChange!
    }
  `,
  resolvers: {
    Query: { hello: () => "world" },
    Mutation: {
      transition: (_r: unknown, args: { jobId: string; state: string; raw?: boolean | null }) => {
        const e: Event = { cursor: String(++seq), state: args.state, at: new Date().toISOString(), job: { id: args.jobId, state: args.state } };
        if (args.raw) broadcast(e);
        else pubSub.publish("jobStateChanged", e);
        return e.cursor;
      },
    },
    Subscription: {
      jobStateChanged: { subscribe: () => pubSub.subscribe("jobStateChanged"), resolve: (e: Event) => e },
    },
  },
});

/** graphql-ws subscription ids by socket (for the raw broadcast). */
const subscriptions = new Map<WebSocket, Set<string>>();

function broadcast(e: Event): void {
  const payload = JSON.stringify({ data: { jobStateChanged: e } });
  for (const [socket, ids] of subscriptions) for (const id of ids) socket.send(`{"id":${JSON.stringify(id)},"type":"next","payload":${payload}}`);
}

const yoga = createYoga({ schema, graphqlEndpoint: "/graphql", landingPage: false, graphiql: false, logging: false });
const server = http.createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    return;
  }
  void yoga.handle(req, res);
});
const wss = new WebSocketServer({ server, path: "/graphql" });
useServer(
  {
    execute: (args) => (args.rootValue as { execute: (a: ExecutionArgs) => unknown }).execute(args) as never,
    subscribe: (args) => (args.rootValue as { subscribe: (a: ExecutionArgs) => unknown }).subscribe(args) as never,
    onComplete: (ctx, id) => {
      subscriptions.get(ctx.extra.socket)?.delete(id);
    },
    onSubscribe: async (ctx, id, params) => {
      const socket = ctx.extra.socket;
      if (!subscriptions.has(socket)) {
        subscriptions.set(socket, new Set());
        socket.once("close", () => subscriptions.delete(socket));
      }
      subscriptions.get(socket)!.add(id);
      const { schema: s, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({ ...ctx, req: ctx.extra.request, socket: ctx.extra.socket, params });
      const document = parse(params.query);
      const errors = validate(s, document);
      if (errors.length) return errors;
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
  15_000,
);

const close = () => {
  for (const c of wss.clients) c.terminate();
  server.closeAllConnections();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on("SIGTERM", close);
process.on("SIGINT", close);
process.stdin.on("end", close);
process.stdin.resume();

server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}` })}\n`);
});
