// Per-request context. Built once per HTTP request or WebSocket subscribe message.
import type { PrismaClient } from "../store/db.js";
import type { Commands, Actor } from "../jobs/commands.js";
import type { EventFeed } from "../events/feed.js";

export interface Context {
  prisma: PrismaClient;
  commands: Commands;
  feed: EventFeed;
  /** Who is calling. Until authentication lands every caller is the single local user. */
  actor: Actor;
}

export interface ContextDeps {
  prisma: PrismaClient;
  commands: Commands;
  feed: EventFeed;
}

export const LOCAL_USER = "local";

export function createContext(deps: ContextDeps): Context {
  return { ...deps, actor: { user: LOCAL_USER } };
}
