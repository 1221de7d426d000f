// Per-request context. Built once per HTTP request or WebSocket subscribe message.
import { GraphQLError } from "graphql";
import type { Database, PrismaClient } from "../store/db.js";
import type { Commands } from "../jobs/commands.js";
import type { EventFeed } from "../events/feed.js";
import type { TokenService } from "../auth/tokens.js";
import type { Principal } from "../auth/policy.js";

export interface Context {
  prisma: PrismaClient;
  /** reads that bypass Prisma (the hottest queries only: src/store/job-reads.ts) */
  db: Pick<Database, "query">;
  commands: Commands;
  feed: EventFeed;
  tokens: TokenService;
  /** Who is calling; null when the request carries no valid token (then only UNAUTHENTICATED). */
  principal: Principal | null;
}

export interface ContextDeps {
  prisma: PrismaClient;
  db: Pick<Database, "query">;
  commands: Commands;
  feed: EventFeed;
  tokens: TokenService;
}

export function unauthenticated(): GraphQLError {
  return new GraphQLError("a valid API token is required: send `Authorization: Bearer <token>` (on WebSocket: connection_init payload { authorization: \"Bearer <token>\" })", {
    extensions: { code: "UNAUTHENTICATED", http: { status: 401 } },
  });
}

/** The caller; the authentication plugin has already refused requests without one. */
export function me(ctx: Context): Principal {
  if (!ctx.principal) throw unauthenticated();
  return ctx.principal;
}
