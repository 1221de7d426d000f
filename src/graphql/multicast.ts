// Shared execution of subscription events: an event is executed (and serialised) once per group of
// subscribers that would all compute the same result, not once per subscriber.
//
// A group is: the same normalised selection (the operation printed with the root field's arguments
// removed, since they only choose WHICH events reach a subscriber: `jobId`, `after`), the same values
// of the variables that selection still uses, and the same visibility scope (ADMIN, or one user).
// The root resolvers of the shareable fields return the event unchanged (`resolve: (e) => e`), so
// their arguments do not shape the result; every other resolver below them sees the group's context,
// whose principal has the group's role and user (nothing below a subscription root looks at more).
//
// What stays per subscriber: the source stream (the feed subscription with its own filter, its
// replay from `after` and its no-gap/no-duplicate hand-over to live events, its revocation watch),
// and everything on the way out (error masking, the transport). A live event is dispatched to every
// subscription as the SAME object, so the group memoises results by event identity: the first
// member to reach an event executes it, the others reuse the result, and its JSON text, computed
// once (`stringify`, which yoga's SSE writer uses; src/server/ws.ts splices it into each
// graphql-ws message). Replayed events are read per subscriber, so they are executed per subscriber.
import {
  GraphQLError,
  Kind,
  createSourceEventStream,
  execute,
  getOperationAST,
  print,
  visit,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type OperationDefinitionNode,
} from "graphql";
import type { Plugin } from "graphql-yoga";
import type { WebSocket } from "ws";
import { detach, register, unregister, type Detached } from "../server/ws.js";
import type { Context } from "./context.js";
import type { SubscriberStream } from "./streams.js";
import type { EventFeed, FeedTap, Handover, SubscribeOptions } from "../events/feed.js";
import type { ProgressMessage, ProgressTap } from "../events/progress.js";

/** Subscription root fields whose resolver returns the source event unchanged (the only ones shared). */
export const SHAREABLE_FIELDS: ReadonlySet<string> = new Set(["jobStateChanged", "jobProgress"]);

type Result = ExecutionResult & { stringify?: (r: unknown) => string };

/** The JSON text of a result executed for a group (computed once), or null for any other object. */
export function sharedJson(result: unknown): string | null {
  const entry = result && typeof result === "object" ? jsonOf.get(result) : undefined;
  if (entry === undefined) return null;
  if (entry.text === null) entry.text = JSON.stringify(result);
  return entry.text;
}
const jsonOf = new WeakMap<object, { text: string | null }>();

function markShared(result: Result): Result {
  const entry = { text: null as string | null };
  jsonOf.set(result, entry);
  // yoga's SSE writer calls `result.stringify(sanitised)`; sanitised === result unless it had to strip
  // internals (errors), and then it is a new object serialised as usual.
  Object.defineProperty(result, "stringify", {
    value: (r: unknown) => (r === result ? sharedJson(result)! : JSON.stringify(r)),
    enumerable: false,
  });
  return result;
}

class Group implements FeedTap, ProgressTap {
  members = 0;
  /** Results by event object; events nobody holds any more are collected with their results. */
  private readonly results = new WeakMap<object, Promise<Result>>();
  /** The JSON text of a result as pushed (errors masked), by result. */
  private readonly pushed = new WeakMap<object, string>();
  executions = 0;
  /** Members receiving live events from this group (WebSocket subscribers past their replay). */
  private readonly live = new Set<PushMember>();
  private untap: (() => void) | null = null;
  /** Deliveries in event order, each waiting for its execution. */
  private tail: Promise<void> = Promise.resolve();

  constructor(
    readonly key: string,
    readonly field: string,
    private readonly args: ExecutionArgs,
    private readonly feed: EventFeed,
    readonly mask: (e: GraphQLError) => GraphQLError,
  ) {}

  get size(): number {
    return this.live.size;
  }

  result(event: unknown): Promise<Result> {
    if (event === null || typeof event !== "object") return this.execute(event);
    let r = this.results.get(event);
    if (!r) {
      r = this.execute(event);
      this.results.set(event, r);
    }
    return r;
  }

  private async execute(event: unknown): Promise<Result> {
    this.executions++;
    return markShared((await execute({ ...this.args, rootValue: event })) as Result);
  }

  /** The result as a graphql-ws `next` payload: its shared JSON, or with its errors masked (once). */
  pushJson(r: Result): string {
    if (!r.errors?.length) return sharedJson(r) ?? JSON.stringify(r);
    let text = this.pushed.get(r);
    if (text === undefined) {
      text = JSON.stringify({ ...r, errors: r.errors.map((e) => this.mask(e as GraphQLError)) });
      this.pushed.set(r, text);
    }
    return text;
  }

  addLive(m: PushMember): void {
    this.live.add(m);
    if (!this.untap) this.untap = this.field === "jobProgress" ? this.feed.progress.tap(this) : this.feed.tap(this);
  }

  removeLive(m: PushMember): void {
    this.live.delete(m);
    if (!this.live.size && this.untap) {
      this.untap();
      this.untap = null;
    }
  }

  /** Called by the feed (or the progress hub) for every event, in order. */
  offer(e: unknown): void {
    // Who receives it is decided now: a member joining later got it on its own (see PushMember).
    let targets: PushMember[] | null = null;
    for (const m of this.live) {
      if (m.matches(e)) (targets ??= []).push(m);
    }
    if (!targets) return;
    const result = this.result(e);
    const t = targets;
    this.tail = this.tail
      .then(() => result)
      .then(
        (r) => this.deliver(e, r, t),
        (err) => {
          for (const m of t) m.fail(err);
        },
      );
  }

  private deliver(e: unknown, r: Result, targets: PushMember[]): void {
    const text = this.pushJson(r);
    const seq = (e as { seq?: unknown }).seq;
    for (const m of targets) {
      if (!m.live) continue;
      if (typeof seq === "bigint") {
        if (m.cursor !== null && seq <= m.cursor) continue;
        if (m.congested()) {
          m.demote(); // too slow for the live stream: back to reading the table from its cursor
          continue;
        }
        m.cursor = seq;
      }
      m.push(text);
    }
  }
}

/** What a subscription hands over when caught up: a feed position and filter, or a progress filter. */
type AnyHandover = Handover | { matches(m: ProgressMessage): boolean };

/**
 * A WebSocket subscriber of a group. It reads its own stream (replay from `after`, or the first
 * progress figures) with backpressure, each event through the group's memoised execution; once its
 * stream is caught up, the stream hands over to the group, which pushes every later event's JSON to
 * the socket directly. Too slow for the live stream (the socket's unsent bytes pile up), it goes
 * back to reading the table from its cursor, and hands over again once caught up.
 */
class PushMember implements Detached {
  live = false;
  closed = false;
  /** Known to src/server/ws.ts (the client's complete and the socket's close reach it from there). */
  private readonly registered: boolean;
  /** Taken away from graphql-ws (src/server/ws.ts): its end is ours to tell the client. */
  private detached = false;
  cursor: bigint | null = null;
  matches: (e: any) => boolean = () => false;
  private opts: SubscribeOptions | null = null;
  private source: { next(): Promise<IteratorResult<unknown>>; return?(): unknown; handover?(onEnd: () => void): AnyHandover | null };
  private settle: { resolve: (r: IteratorResult<Result>) => void; reject: (e: unknown) => void } | null = null;
  readonly ended: Promise<IteratorResult<Result>>;

  constructor(
    private readonly group: Group,
    private readonly stream: SubscriberStream<unknown>,
    private readonly socket: WebSocket,
    private readonly id: string,
    private readonly prefix: string,
    private readonly feed: EventFeed,
    private readonly operation: OperationDefinitionNode,
    private readonly release: () => void,
  ) {
    this.source = stream as never;
    this.registered = register(socket, id, this);
    this.ended = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
  }

  async pump(): Promise<void> {
    try {
      for (;;) {
        if (this.closed) return;
        const h = this.source.handover?.(() => this.finish());
        if (h) {
          if ("cursor" in h) {
            this.cursor = h.cursor;
            this.opts = h.opts;
          }
          this.matches = h.matches;
          this.live = true;
          this.group.addLive(this);
          if (this.registered && !this.detached && detach(this.socket, this.id, this)) {
            // graphql-ws's iterator ends (its `complete` is not sent): graphql-ws, the envelop
            // wrappers and the operation's context let go of this subscription.
            this.detached = true;
            const s = this.settle!;
            this.settle = null;
            s.resolve({ value: undefined, done: true });
          }
          return;
        }
        const r = await this.source.next();
        if (this.closed) return;
        if (r.done) return this.finish();
        const result = await this.group.result(r.value);
        if (this.closed) return;
        await this.send(this.group.pushJson(result));
        const seq = (r.value as { seq?: unknown }).seq;
        if (typeof seq === "bigint") this.cursor = seq;
      }
    } catch (err) {
      this.fail(err);
    }
  }

  private send(text: string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.socket.readyState !== this.socket.OPEN) return resolve();
      this.socket.send(this.prefix + text + "}", (err) => (err ? reject(err) : resolve()));
    });
  }

  push(text: string): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(this.prefix + text + "}");
  }

  congested(): boolean {
    return this.socket.bufferedAmount > Math.min(1 << 20, this.feed.maxQueue * 1024);
  }

  demote(): void {
    if (!this.live || !this.opts) return;
    this.live = false;
    this.group.removeLive(this);
    this.source = this.feed.subscribe({ ...this.opts, after: this.cursor });
    void this.pump();
  }

  private cleanup(message: string | null): void {
    if (this.live) {
      this.live = false;
      this.group.removeLive(this);
    }
    if (this.source !== (this.stream as unknown)) void this.source.return?.();
    void this.stream.return?.();
    this.release();
    if (this.registered) unregister(this.socket, this.id, this, message);
  }

  /** The client completed it, or the socket closed (src/server/ws.ts): end without a message. */
  stop(): void {
    if (this.closed) return;
    this.closed = true;
    this.cleanup(null);
    // Attached: graphql-ws's loop ends too (it no longer sends anything for this id).
    this.settle?.resolve({ value: undefined, done: true });
  }

  /** The stream ended (or graphql-ws returned the iterator): complete. */
  finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.cleanup(this.detached ? `{"id":${JSON.stringify(this.id)},"type":"complete"}` : null);
    this.settle?.resolve({ value: undefined, done: true });
  }

  fail(err: unknown): void {
    if (this.closed) return;
    this.closed = true;
    const e = err instanceof Error ? err : new Error(String(err));
    const located = new GraphQLError(e.message, { originalError: e, nodes: [this.operation] });
    if (!this.detached) {
      this.cleanup(null);
      return this.settle?.reject(located);
    }
    // What graphql-ws sends for an error thrown by a subscription's iterator, after masking.
    const masked = this.group.mask(located);
    const payload = [new GraphQLError(masked.message, { originalError: masked }).toJSON()];
    this.cleanup(JSON.stringify({ id: this.id, type: "error", payload }));
  }
}

/** The iterator graphql-ws consumes for a pushed subscription: nothing until the subscription ends. */
function pushHandle(member: PushMember): AsyncIterableIterator<Result> {
  let started = false;
  const it: AsyncIterableIterator<Result> = {
    next() {
      if (!started) {
        started = true;
        void member.pump();
      }
      return member.ended;
    },
    async return() {
      member.finish();
      return { value: undefined, done: true };
    },
    async throw(err?: unknown) {
      member.finish();
      throw err;
    },
    [Symbol.asyncIterator]() {
      return it;
    },
  };
  return it;
}

/** Where a WebSocket subscription's messages go (set in the context by src/server/app.ts). */
export interface PushTarget {
  socket: WebSocket;
  id: string;
  /** Whether graphql-ws still holds the subscription (false: the client completed it meanwhile). */
  active?: () => boolean;
}

interface Normalised {
  text: string;
  variables: string[];
  field: string;
}

/** The shareable shape of an operation, or null when it is not one (then it runs as usual). */
function normalise(document: DocumentNode, operation: OperationDefinitionNode): Normalised | null {
  if (operation.operation !== "subscription") return null;
  const root = operation.selectionSet.selections;
  if (root.length !== 1 || root[0]!.kind !== Kind.FIELD || !SHAREABLE_FIELDS.has(root[0]!.name.value)) return null;
  const rootField = root[0]!;
  // Only this operation (others in the document do not run) and the fragments it may use; the
  // variables still used keep their definitions (type, default), the others go.
  const fragments = document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION);
  const selectionSet = { ...operation.selectionSet, selections: [{ ...rootField, arguments: [] }] };
  const variables = new Set<string>();
  visit({ kind: Kind.DOCUMENT, definitions: [{ ...operation, variableDefinitions: [], selectionSet }, ...fragments] } as DocumentNode, {
    Variable(node) {
      variables.add(node.name.value);
    },
  });
  const stripped: DocumentNode = {
    kind: Kind.DOCUMENT,
    definitions: [
      {
        ...operation,
        name: undefined,
        variableDefinitions: (operation.variableDefinitions ?? []).filter((v) => variables.has(v.variable.name.value)),
        selectionSet,
      },
      ...fragments,
    ],
  };
  return { text: print(stripped), variables: [...variables].sort(), field: rootField.name.value };
}

function isAsyncIterable(x: unknown): x is AsyncIterable<unknown> {
  return x != null && typeof (x as AsyncIterable<unknown>)[Symbol.asyncIterator] === "function";
}

export interface Multicast {
  plugin: Plugin<Context>;
  /** Groups with at least one member (tests, metrics). */
  readonly groups: number;
  /** Executions performed for groups since start (tests). */
  readonly executions: number;
}

/**
 * The envelop plugin replacing `subscribe` for shareable subscriptions: the source stream is built
 * as graphql-js does (the root field's `subscribe` resolver, with its authorization checks), and
 * each event is mapped through the group's memoised execution instead of a per-subscriber one.
 * Anything else (another operation, an error while starting) takes the usual path unchanged.
 */
export function createMulticast(opts: { mask: (e: GraphQLError) => GraphQLError }): Multicast {
  const groups = new Map<string, Group>();
  const shapes = new WeakMap<DocumentNode, Map<string, Normalised | null>>();
  let executions = 0;

  function shape(document: DocumentNode, operationName: string | null | undefined): Normalised | null {
    let byName = shapes.get(document);
    if (!byName) shapes.set(document, (byName = new Map()));
    const name = operationName ?? "";
    if (!byName.has(name)) {
      const op = getOperationAST(document, operationName);
      byName.set(name, op ? normalise(document, op) : null);
    }
    return byName.get(name)!;
  }

  function join(key: string, field: string, args: ExecutionArgs, ctx: Context): Group {
    let g = groups.get(key);
    if (!g) {
      // The group's own context: only what resolvers use, not the first member's transport objects.
      const context: Context = { prisma: ctx.prisma, db: ctx.db, commands: ctx.commands, feed: ctx.feed, tokens: ctx.tokens, principal: ctx.principal };
      const exec = { schema: args.schema, document: args.document, operationName: args.operationName, variableValues: args.variableValues, contextValue: context };
      g = new Group(key, field, exec, ctx.feed, opts.mask);
      groups.set(key, g);
    }
    g.members++;
    return g;
  }

  function leave(g: Group): void {
    if (--g.members === 0 && groups.get(g.key) === g) {
      groups.delete(g.key);
      executions += g.executions;
    }
  }

  async function sharedSubscribe(args: ExecutionArgs, fallback: (a: ExecutionArgs) => unknown): Promise<unknown> {
    const ctx = args.contextValue as Context;
    const s = ctx?.principal ? shape(args.document, args.operationName) : null;
    if (!s) return fallback(args);
    const source = await createSourceEventStream(args);
    // An error while starting (bad argument, NOT_FOUND, ...): answer exactly as the usual path does.
    if (!isAsyncIterable(source)) return fallback(args);
    const vars = args.variableValues ?? {};
    const scope = ctx.principal!.role === "ADMIN" ? "ADMIN" : `USER ${ctx.principal!.user}`;
    const key = `${scope}\n${JSON.stringify(s.variables.map((v) => vars[v] ?? null))}\n${s.text}`;
    const group = join(key, s.field, args, ctx);
    const operation = getOperationAST(args.document, args.operationName)!;
    const stream = source[Symbol.asyncIterator]() as SubscriberStream<unknown>;
    const push = (ctx as Context & { push?: PushTarget }).push;
    if (push && typeof stream.handover === "function") {
      // graphql-ws: the group writes to the socket itself (the same JSON for every member, after the id).
      const prefix = `{"id":${JSON.stringify(push.id)},"type":"next","payload":`;
      let released = false;
      const release = () => {
        if (!released) {
          released = true;
          leave(group);
        }
      };
      const member = new PushMember(group, stream, push.socket, push.id, prefix, ctx.feed, operation, release);
      // Completed by the client while it was starting (before it could be registered): end it here
      // rather than rely on graphql-ws's `return` reaching it through the envelop wrappers.
      if (push.active && !push.active()) member.stop();
      return pushHandle(member);
    }
    return mapShared(stream, group, operation, () => leave(group));
  }

  return {
    plugin: {
      onSubscribe({ subscribeFn, setSubscribeFn }) {
        setSubscribeFn(((a: ExecutionArgs) => sharedSubscribe(a, subscribeFn as (a: ExecutionArgs) => unknown)) as never);
      },
    },
    get groups() {
      return groups.size;
    },
    get executions() {
      let n = executions;
      for (const g of groups.values()) n += g.executions;
      return n;
    },
  };
}

/** Each source event mapped to its group's result; leaving (return, end, error) releases the membership once. */
function mapShared(source: AsyncIterator<unknown>, group: Group, operation: OperationDefinitionNode, release: () => void): AsyncIterableIterator<Result> {
  let left = false;
  const done = (): IteratorResult<Result> => {
    if (!left) {
      left = true;
      release();
    }
    return { value: undefined, done: true };
  };
  const it: AsyncIterableIterator<Result> = {
    async next() {
      if (left) return { value: undefined, done: true };
      let r: IteratorResult<unknown>;
      try {
        r = await source.next();
      } catch (err) {
        done();
        // As graphql-tools' executor does: the error located at the operation.
        const e = err instanceof Error ? err : new Error(String(err));
        throw new GraphQLError(e.message, { originalError: e, nodes: [operation] });
      }
      if (r.done) return done();
      return { value: await group.result(r.value), done: false };
    },
    async return() {
      const r = done();
      await source.return?.();
      return r;
    },
    async throw(err?: unknown) {
      done();
      await source.return?.();
      throw err;
    },
    [Symbol.asyncIterator]() {
      return it;
    },
  };
  return it;
}
