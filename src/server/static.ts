// serveStatic: the web dashboard's built files (web/dist, made by `npm run build:web`), served by the
// API's own HTTP server. GET and HEAD only. `/` and client-side routes answer index.html; files are
// looked up inside distDir only (the resolved path must stay inside it: no traversal, no dotfiles,
// regular files only); hashed assets (Vite's assets/name-<hash>.ext) are cached as immutable,
// everything else is revalidated. A request it does not handle (another method, /graphql, /healthz,
// an unknown path that is not a page) returns false, so the caller goes on to its other routes.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type http from "node:http";

/** Where `npm run build:web` writes the dashboard (web/vite.config.ts: outDir). */
export const DASHBOARD_DIST = fileURLToPath(new URL("../../web/dist", import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".webmanifest": "application/manifest+json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".ico": "image/x-icon",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
  ".wasm": "application/wasm",
};

/** Paths that belong to the API and never fall back to the dashboard's index.html. */
const RESERVED = ["/graphql", "/healthz", "/metrics", "/readyz", "/livez"];

/** Vite's hashed output names, e.g. assets/index-B1x2_c3D.js: their content never changes. */
const HASHED = /^\/assets\/.+-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$/;

// Same-origin only: scripts, styles and the API (HTTP and WebSocket) from this host; no framing.
const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' ws: wss:; " +
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};

export interface ServeStaticOptions {
  /** Path prefixes left to the caller (default /graphql, /healthz, /metrics, /readyz, /livez). */
  reserved?: string[];
}

/**
 * A request handler for the dashboard's files in `distDir`. Returns true when it answered the
 * request, false when the caller should handle it.
 */
export function serveStatic(distDir: string, options: ServeStaticOptions = {}): (req: http.IncomingMessage, res: http.ServerResponse) => boolean {
  const root = path.resolve(distDir);
  const reserved = options.reserved ?? RESERVED;
  const isReserved = (p: string) => reserved.some((r) => p === r || p.startsWith(r + "/"));

  return (req, res) => {
    const method = req.method ?? "GET";
    if (method !== "GET" && method !== "HEAD") return false;
    const raw = req.url ?? "/";
    if (!raw.startsWith("/")) return false; // absolute-form or "*": not ours
    const q = raw.search(/[?#]/);
    const rawPath = q >= 0 ? raw.slice(0, q) : raw;
    if (isReserved(rawPath)) return false;

    let pathname: string;
    try {
      pathname = decodeURIComponent(rawPath);
    } catch {
      return false; // malformed escapes: let the caller answer
    }
    if (pathname.includes("\0") || pathname.includes("\\")) {
      send(res, method, 400, "text/plain; charset=utf-8", "bad path\n");
      return true;
    }
    if (isReserved(pathname)) return false;

    const indexFile = path.join(root, "index.html");
    const page = pathname === "/" || pathname === "/index.html";
    if (page && !isFile(indexFile)) {
      send(res, method, 503, "text/plain; charset=utf-8", "dashboard not built: run npm run build:web\n", { "retry-after": "10" });
      return true;
    }

    // A file inside the dist directory? (No dot segments anywhere: no dotfiles, no traversal.)
    if (!page) {
      const segments = pathname.split("/").filter((s) => s.length > 0);
      const hidden = segments.some((s) => s.startsWith("."));
      const file = path.resolve(root, ...segments);
      const inside = file.startsWith(root + path.sep);
      if (!hidden && inside && isFile(file)) {
        serveFile(req, res, method, file, HASHED.test(pathname) ? "public, max-age=31536000, immutable" : "no-cache");
        return true;
      }
      const last = segments[segments.length - 1] ?? "";
      // A missing asset (a file name with an extension, or anything under /assets/) is a 404 of
      // ours when it is under /assets/, else the caller's to answer.
      if (pathname.startsWith("/assets/")) {
        send(res, method, 404, "text/plain; charset=utf-8", "not found\n");
        return true;
      }
      if (last.includes(".")) return false;
      // A client-side route (no extension): the app, but only for a browser asking for a page.
      if (!acceptsHtml(req) || !isFile(indexFile)) return false;
    }
    serveFile(req, res, method, indexFile, "no-cache");
    return true;
  };
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function acceptsHtml(req: http.IncomingMessage): boolean {
  const accept = req.headers.accept ?? "";
  return accept.includes("text/html");
}

function send(res: http.ServerResponse, method: string, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  const buf = Buffer.from(body);
  res.writeHead(status, { "content-type": type, "content-length": buf.length, "cache-control": "no-store", ...extra });
  res.end(method === "HEAD" ? undefined : buf);
}

function serveFile(req: http.IncomingMessage, res: http.ServerResponse, method: string, file: string, cacheControl: string): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    send(res, method, 404, "text/plain; charset=utf-8", "not found\n");
    return;
  }
  const etag = `W/"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
  const headers: Record<string, string | number> = {
    "content-type": CONTENT_TYPES[path.extname(file).toLowerCase()] ?? "application/octet-stream",
    "cache-control": cacheControl,
    etag,
    "last-modified": stat.mtime.toUTCString(),
    ...SECURITY_HEADERS,
  };
  const inm = req.headers["if-none-match"];
  if (inm && inm.split(",").some((t) => t.trim() === etag || t.trim() === "*")) {
    res.writeHead(304, headers).end();
    return;
  }
  headers["content-length"] = stat.size;
  res.writeHead(200, headers);
  if (method === "HEAD") {
    res.end();
    return;
  }
  const stream = fs.createReadStream(file);
  stream.on("error", () => res.destroy());
  res.on("close", () => stream.destroy());
  stream.pipe(res);
}
