// API tokens: random 256-bit bearer tokens, stored only as a SHA-256 hash, each belonging to a
// principal (user + role). Revocation takes effect at once in every process: the revoking
// transaction sends a NOTIFY on `haul_tokens`, every process drops its cached entry and closes the
// WebSockets authenticated with that token; a periodic check catches a missed notification.
import fs from "node:fs";
import path from "node:path";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { PrismaClient } from "../store/db.js";
import type { Logger } from "../logger.js";
import { DomainError } from "../domain/errors.js";
import { assertWellFormed } from "../domain/validation.js";
import { validateUserName, type Principal, type Role } from "./policy.js";

export const TOKENS_CHANNEL = "haul_tokens";
const CACHE_MS = 30_000;

export function generateToken(): string {
  return `haul_${randomBytes(32).toString("base64url")}`;
}

export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

/** The token from an `Authorization: Bearer <token>` value (case-insensitive scheme), or null. */
export function bearer(header: string | null | undefined): string | null {
  if (!header) return null;
  const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1]! : null;
}

export interface TokenInfo {
  id: string;
  user: string;
  role: Role;
  description: string;
  createdAt: Date;
  createdBy: string | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

export class TokenService {
  private readonly cache = new Map<string, { principal: Principal | null; at: number }>();
  private readonly revokedListeners = new Set<(tokenId: string) => void>();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly logger?: Logger,
  ) {}

  /** Called with every NOTIFY on TOKENS_CHANNEL (payload: the token id). */
  onNotify(tokenId: string): void {
    for (const [k, v] of this.cache) if (v.principal?.tokenId === tokenId) this.cache.delete(k);
    for (const l of this.revokedListeners) l(tokenId);
  }

  onRevoked(listener: (tokenId: string) => void): () => void {
    this.revokedListeners.add(listener);
    return () => this.revokedListeners.delete(listener);
  }

  /** The principal of a token, or null when it is unknown or revoked. */
  async authenticate(token: string | null): Promise<Principal | null> {
    if (!token || token.length > 200) return null;
    const hash = hashToken(token);
    const hit = this.cache.get(hash);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.principal;
    const row = await this.prisma.apiToken.findUnique({ where: { tokenHash: hash } });
    const principal = row && !row.revokedAt ? { user: row.user, role: row.role, tokenId: row.id } : null;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(hash, { principal, at: Date.now() });
    if (row && principal) {
      void this.prisma.apiToken.update({ where: { id: row.id }, data: { lastUsedAt: new Date() } }).catch(() => {});
    }
    return principal;
  }

  /** Of these token ids, the ones that are revoked (or gone). */
  async revokedAmong(ids: string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const live = await this.prisma.apiToken.findMany({ where: { id: { in: ids }, revokedAt: null }, select: { id: true } });
    const ok = new Set(live.map((r) => r.id));
    return ids.filter((id) => !ok.has(id));
  }

  async create(input: { user: string; role: Role; description?: string | null }, createdBy: string | null): Promise<{ token: string; info: TokenInfo }> {
    const user = validateUserName(input.user);
    const description = input.description ?? "";
    if (description.length > 256) throw new DomainError("BAD_USER_INPUT", "description is longer than 256 characters");
    if (description.includes("\0")) throw new DomainError("BAD_USER_INPUT", "description must not contain NUL characters");
    assertWellFormed(description, "description");
    const token = generateToken();
    const info = await this.prisma.apiToken.create({
      data: { id: randomUUID(), user, role: input.role, description, tokenHash: hashToken(token), createdBy },
      omit: { tokenHash: true },
    });
    return { token, info };
  }

  async revoke(id: string): Promise<TokenInfo> {
    const info = await this.prisma.$transaction(async (tx) => {
      const row = await tx.apiToken.findUnique({ where: { id }, omit: { tokenHash: true } });
      if (!row) throw new DomainError("NOT_FOUND", `no API token with id ${id}`);
      if (row.revokedAt) return row;
      const updated = await tx.apiToken.update({ where: { id }, data: { revokedAt: new Date() }, omit: { tokenHash: true } });
      await tx.$executeRaw`SELECT pg_notify(${TOKENS_CHANNEL}, ${id})`;
      return updated;
    });
    this.onNotify(id); // this process at once, without waiting for the notification
    return info;
  }

  list(): Promise<TokenInfo[]> {
    return this.prisma.apiToken.findMany({ orderBy: { createdAt: "asc" }, omit: { tokenHash: true } });
  }

  /**
   * First start: HAUL_ADMIN_TOKEN, when set, is an ADMIN token (user "admin"). When it is unset and
   * no token exists yet, one is created and written to <data dir>/admin-token (mode 0600); the
   * path is logged, never the token.
   */
  async bootstrap(opts: { adminToken: string | null; dataDir: string }): Promise<{ tokenFile: string | null }> {
    const file = path.join(opts.dataDir, "admin-token");
    return this.prisma.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(${0x68617574})`; // "haut": one bootstrap at a time
      if (opts.adminToken) {
        const hash = hashToken(opts.adminToken);
        const existing = await tx.apiToken.findUnique({ where: { tokenHash: hash } });
        if (!existing) {
          await tx.apiToken.create({
            data: { id: randomUUID(), user: "admin", role: "ADMIN", description: "HAUL_ADMIN_TOKEN", tokenHash: hash, createdBy: null },
          });
          this.logger?.info("HAUL_ADMIN_TOKEN registered as an ADMIN token for user admin");
        } else if (existing.revokedAt) {
          this.logger?.warn("HAUL_ADMIN_TOKEN was revoked; it stays revoked");
        }
        return { tokenFile: null };
      }
      if ((await tx.apiToken.count()) > 0) return { tokenFile: fs.existsSync(file) ? file : null };
      const token = generateToken();
      await tx.apiToken.create({
        data: { id: randomUUID(), user: "admin", role: "ADMIN", description: "created at first start", tokenHash: hashToken(token), createdBy: null },
      });
      fs.mkdirSync(opts.dataDir, { recursive: true });
      fs.writeFileSync(file, token + "\n", { mode: 0o600 });
      fs.chmodSync(file, 0o600);
      this.logger?.info({ tokenFile: file }, `an ADMIN token was created; it is in ${file}`);
      return { tokenFile: file };
    });
  }
}
