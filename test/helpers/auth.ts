// Which API token the test helpers send by default, per server. startServer() creates an ADMIN
// token ("admin") and a USER token ("local") in its database and registers the USER token for its
// URL and its database, so gql(), the WebSocket/SSE helpers and child processes on the same
// database authenticate without every test passing a token.
const byOrigin = new Map<string, string>();
const byDatabase = new Map<string, string>();

/** http://host:port for http(s) and ws(s) URLs alike. */
function originOf(url: string): string {
  const u = new URL(url);
  return `${u.protocol.replace(/^ws/, "http")}//${u.host}`;
}

export function setDefaultToken(url: string, token: string): void {
  byOrigin.set(originOf(url), token);
}

export function defaultToken(url: string): string | undefined {
  try {
    return byOrigin.get(originOf(url));
  } catch {
    return undefined;
  }
}

export function setDatabaseToken(databaseUrl: string, token: string): void {
  byDatabase.set(databaseUrl, token);
}

export function databaseToken(databaseUrl: string): string | undefined {
  return byDatabase.get(databaseUrl);
}

/** `undefined`: the server's default token; `null`: no Authorization header at all. */
export function authHeader(url: string, token: string | null | undefined): Record<string, string> {
  const t = token === undefined ? defaultToken(url) : token;
  return t ? { authorization: `Bearer ${t}` } : {};
}

/**
 * Makes sure the database has the test tokens (USER "local", ADMIN "admin") and registers them;
 * returns them. Inserted directly (hashes only, as the service stores them), so child processes on
 * a fresh database authenticate too.
 */
export async function ensureTestTokens(databaseUrl: string): Promise<{ userToken: string; adminToken: string }> {
  const known = { userToken: databaseToken(databaseUrl), adminToken: databaseToken(databaseUrl + "#admin") };
  if (known.userToken && known.adminToken) return known as { userToken: string; adminToken: string };
  const { default: pg } = await import("pg");
  const { generateToken, hashToken } = await import("../../src/auth/tokens.js");
  const { randomUUID } = await import("node:crypto");
  const userToken = generateToken();
  const adminToken = generateToken();
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    for (const [user, role, token] of [
      ["local", "USER", userToken],
      ["admin", "ADMIN", adminToken],
    ] as const) {
      await c.query(`INSERT INTO api_token (id, "user", role, description, token_hash) VALUES ($1, $2, $3, 'tests', $4)`, [randomUUID(), user, role, hashToken(token)]);
    }
  } finally {
    await c.end();
  }
  setDatabaseToken(databaseUrl, userToken);
  setDatabaseToken(databaseUrl + "#admin", adminToken);
  return { userToken, adminToken };
}
