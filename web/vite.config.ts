// The dashboard's build: `npm run build:web` (vite build --config web/vite.config.ts) writes
// web/dist, which the API server serves at / (src/server/static.ts). Everything is bundled: no CDN,
// no web fonts, so the build and the page work offline.
// Development: `npx vite --config web/vite.config.ts` serves the sources with hot reload on :5173
// and forwards /graphql (HTTP and WebSocket) to a haul on 127.0.0.1:4000 (HAUL_URL to change it).
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

const api = process.env.HAUL_URL ?? "http://127.0.0.1:4000";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/",
  publicDir: "public",
  plugins: [react()],
  logLevel: "warn",
  clearScreen: false,
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    assetsInlineLimit: 0, // no data: URLs; the page's CSP allows same-origin files
    chunkSizeWarningLimit: 1000,
  },
  server: {
    proxy: { "/graphql": { target: api, ws: true, changeOrigin: true } },
  },
});
