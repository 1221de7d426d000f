// graphql-ws over `ws`: graphql-ws's own protocol server (makeServer), wired to the sockets as
// graphql-ws/use/ws does, with three differences that matter at thousands of subscribers:
//  - what a connection keeps: the socket and the upgrade request's Authorization header, not the
//    whole upgrade request (headers, raw headers, its socket state) for the life of the connection;
//  - keep-alive: one timer for every socket (ping; no pong by the next round = terminated), not a
//    timer and a pong listener per socket;
//  - a result executed once for a group of subscribers (src/graphql/multicast.ts) carries its JSON
//    text: the `next` message is that text spliced after the subscription id, not the result
//    stringified again for every socket;
//  - a live shared subscription is DETACHED from graphql-ws (`detach`): its multicast member ends
//    graphql-ws's side of it (the `complete` graphql-ws would send for that is not sent), and this
//    module routes what concerns it from then on (the client's `complete`, a duplicate id, the socket
//    closing). So a live subscriber keeps neither graphql-ws's per-subscription state nor the envelop
//    iterator wrappers nor its operation's context: only its socket and its record in its group.
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

/** A shared subscription (src/graphql/multicast.ts, PushMember), registered here from its start. */
export interface Detached {
  /** The client completed it, or the socket closed: end it without a message. */
  stop(): void;
}

interface SocketState {
  /** Registered subscriptions by id (attached to graphql-ws or detached). */
  subs: Map<string, Detached>;
  /** Detached ids whose graphql-ws-side `complete` is not to be sent (they live on without it). */
  mute: Set<string>;
}

/** Sockets served here (null: no shared subscription registered yet). */
const states = new WeakMap<WebSocket, SocketState | null>();

/**
 * Registers shared subscription `id` of `socket`: from now on the client's `complete` for it and the
 * socket closing stop it here (once detached, graphql-ws no longer knows it). False when the socket
 * is not served by useWsServer or the id is taken (it then stays with graphql-ws alone, and never
 * detaches).
 */
export function register(socket: WebSocket, id: string, d: Detached): boolean {
  if (!states.has(socket)) return false;
  let st = states.get(socket);
  if (!st) states.set(socket, (st = { subs: new Map(), mute: new Set() }));
  if (st.subs.has(id)) return false;
  st.subs.set(id, d);
  return true;
}

/**
 * Takes registered subscription `id` away from graphql-ws: the caller then ends graphql-ws's
 * iterator (done), and the `complete` graphql-ws sends for it is dropped. False if the socket is
 * not open or the id not registered by `d`.
 */
export function detach(socket: WebSocket, id: string, d: Detached): boolean {
  const st = states.get(socket);
  if (!st || st.subs.get(id) !== d || socket.readyState !== socket.OPEN) return false;
  st.mute.add(id);
  return true;
}

/** A registered subscription ended: forget it, and send `message` (its complete or error, if detached). */
export function unregister(socket: WebSocket, id: string, d: Detached, message: string | null): void {
  const st = states.get(socket);
  if (!st || st.subs.get(id) !== d) return;
  st.subs.delete(id);
  if (message !== null && socket.readyState === socket.OPEN) socket.send(message);
}

/** Registered subscriptions as the client sees them: completes, duplicate ids. True = handled here. */
function routeDetached(socket: WebSocket, st: SocketState, data: string): boolean {
  let m: { type?: unknown; id?: unknown };
  try {
    m = JSON.parse(data) as typeof m;
  } catch {
    return false; // graphql-ws answers it
  }
  if (typeof m?.id !== "string") return false;
  const d = st.subs.get(m.id);
  if (m.type === "complete") {
    st.mute.delete(m.id);
    if (d) {
      st.subs.delete(m.id);
      d.stop();
    }
    return false; // graphql-ws forgets the id too, if it still holds it
  }
  if (m.type === "subscribe") {
    st.mute.delete(m.id);
    if (d) {
      // as graphql-ws does for an id in use (it no longer knows a detached one)
      socket.close(CloseCode.SubscriberAlreadyExists, `Subscriber for ${m.id} already exists`);
      return true;
    }
  }
  return false;
}

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
    states.set(socket, null);
    socket.on("pong", markAlive);
    socket.once("error", (err) => socket.close(CloseCode.InternalServerError, limitReason(err.message)));
    const auth = request.headers.authorization;
    const closed = server.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            if (socket.readyState !== socket.OPEN || data.endsWith(SENT_SUFFIX)) return resolve();
            const st = states.get(socket);
            if (st?.mute.size && data.endsWith(`"type":"complete"}`)) {
              const id = (JSON.parse(data) as { id: string }).id;
              if (st.mute.delete(id)) return resolve(); // detached: it lives on (or has said its own end)
            }
            socket.send(data, (err) => (err ? reject(err) : resolve()));
          }),
        close: (code, reason) => socket.close(code, reason),
        onMessage: (cb) =>
          socket.on("message", async (data) => {
            try {
              const text = String(data);
              const st = states.get(socket);
              if (st && routeDetached(socket, st, text)) return;
              await cb(text);
            } catch (err) {
              socket.close(CloseCode.InternalServerError, limitReason(err instanceof Error ? err.message : String(err)));
            }
          }),
      },
      makeExtra({ socket, authorization: typeof auth === "string" ? auth : undefined }),
    );
    socket.once("close", (code, reason) => {
      const st = states.get(socket);
      if (st) {
        const subs = [...st.subs.values()];
        st.subs.clear();
        for (const d of subs) d.stop();
      }
      void closed(code, String(reason));
    });
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
