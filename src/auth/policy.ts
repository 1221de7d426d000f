// Authorization, in one place. Every path that reads or changes a job asks these functions: the
// GraphQL queries (job, node, jobs), every command (src/jobs/commands.ts), and every subscription
// event (filtered per event and per subscriber in src/events/feed.ts through `ownerScope`).
// A user sees and acts only on their own jobs; another user's job is indistinguishable from a
// missing one (NOT_FOUND). An admin sees and acts on every job.
import { DomainError } from "../domain/errors.js";

export type Role = "USER" | "ADMIN";

export interface Principal {
  user: string;
  role: Role;
  /** the API token this request authenticated with */
  tokenId: string;
}

export function isAdmin(p: Principal): boolean {
  return p.role === "ADMIN";
}

/** May this principal see (and act on) a job of this owner? */
export function canAccess(p: Principal, owner: string): boolean {
  return p.role === "ADMIN" || p.user === owner;
}

export function requireAdmin(p: Principal, what: string): void {
  if (!isAdmin(p)) throw new DomainError("FORBIDDEN", `${what} needs an ADMIN token`);
}

/**
 * The owner a listing or a subscription is restricted to: the caller's own jobs, or (admins only,
 * when they ask for all users) no restriction. `owner` narrows an admin's view to one user.
 */
export function ownerScope(p: Principal, opts: { allUsers?: boolean | null; owner?: string | null } = {}): string | undefined {
  if (opts.owner != null) validateUserName(opts.owner);
  if (opts.allUsers) {
    requireAdmin(p, "allUsers");
    return opts.owner ?? undefined;
  }
  if (opts.owner && opts.owner !== p.user) {
    if (!isAdmin(p)) throw new DomainError("FORBIDDEN", "only an ADMIN may list another user's jobs");
    return opts.owner;
  }
  return isAdmin(p) && opts.owner ? opts.owner : p.user;
}

/** User names are also directory names under the storage root. */
export function validateUserName(user: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(user)) {
    throw new DomainError("BAD_USER_INPUT", "user must be 1 to 64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit");
  }
  return user;
}
