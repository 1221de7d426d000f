// graphql-ws over `ws`: graphql-ws's own protocol server (makeServer), wired to the sockets as
// graphql-ws/use/ws does, with three differences that matter at thousands of subscribers:
//  - what a connection keeps: the socket and the upgrade request's Authorization header, not the
//    whole upgrade request (headers, raw headers, its socket state) for the life of the connection;
//  - keep-alive: one timer for every socket (ping; no pong by the next round = terminated), not a
//    timer and a pong listener per socket;
//  - a result executed once for a group of subscribers (src/graphql/multicast.ts) carries its JSON
//    text: the `next` message is that text spliced after the subscription id, not the result
//    stringified again for every socket.
import { CloseCode, makeServer, handleProtocols, type ServerOptions } from "graphql-ws";
import type { WebSocketServer, WebSocket } from "ws";
import { sharedJson } from "../graphql/multicast.js";

export interface Extra {
  socket: WebSocket;
  /** The upgrade request's Authorization header, if any. */
  authorization: string | undefined;
}

/** What onNext returns once it has sent the spliced message itself: graphql-ws's copy is dropped. */
const SENT = { toJSON: () => "\u0000sent" };
const SENT_SUFFIX = `"payload":${JSON.stringify("\u0000sent")}}`;

function limitReason(reason: string): string {
  return Buffer.byteLength(reason) > 123 ? "Internal server error" : reason;
}

export function useWsServer<E extends Extra>(
  options: ServerOptions<Record<string, unknown> | undefined, E>,
  wss: WebSocketServer,
  keepAliveMs: number,
  makeExtra: (base: Extra) => E,
): { dispose(): Promise<void> } {
  const userOnNext = options.onNext;
  const server = makeServer<Record<string, unknown> | undefined, E>({
    ...options,
    onNext: async (ctx, id, payload, args, result) => {
      const json = sharedJson(result);
      if (json === null) return userOnNext?.(ctx, id, payload, args, result);
      const socket = ctx.extra.socket;
      if (socket.readyState !== socket.OPEN) return SENT as never;
      await new Promise<void>((resolve, reject) => socket.send(`{"id":${JSON.stringify(id)},"type":"next","payload":${json}}`, (err) => (err ? reject(err) : resolve())));
      return SENT as never;
    },
  });
  wss.options.handleProtocols = handleProtocols;
  wss.once("error", (err) => {
    for (const client of wss.clients) client.close(CloseCode.InternalServerError, limitReason(err.message));
  });

  const alive = new WeakSet<WebSocket>();
  const markAlive = function (this: WebSocket) {
    alive.add(this);
  };
  const keepAlive = setInterval(() => {
    for (const socket of wss.clients) {
      if (socket.readyState !== socket.OPEN) continue;
      if (!alive.has(socket)) {
        socket.terminate();
        continue;
      }
      alive.delete(socket);
      socket.ping();
    }
  }, keepAliveMs);
  keepAlive.unref();

  wss.on("connection", (socket, request) => {
    alive.add(socket);
    socket.on("pong", markAlive);
    socket.once("error", (err) => socket.close(CloseCode.InternalServerError, limitReason(err.message)));
    const auth = request.headers.authorization;
    const closed = server.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            if (socket.readyState !== socket.OPEN || data.endsWith(SENT_SUFFIX)) return resolve();
            socket.send(data, (err) => (err ? reject(err) : resolve()));
          }),
        close: (code, reason) => socket.close(code, reason),
        onMessage: (cb) =>
          socket.on("message", async (data) => {
            try {
              await cb(String(data));
            } catch (err) {
              socket.close(CloseCode.InternalServerError, limitReason(err instanceof Error ? err.message : String(err)));
            }
          }),
      },
      makeExtra({ socket, authorization: typeof auth === "string" ? auth : undefined }),
    );
    socket.once("close", (code, reason) => void closed(code, String(reason)));
  });

  return {
    async dispose() {
      clearInterval(keepAlive);
      for (const client of wss.clients) client.close(1001, "Going away");
      wss.removeAllListeners();
      await new Promise<void>((resolve, reject) => wss.close((err) => (err ? reject(err) : resolve())));
    },
  };
}
