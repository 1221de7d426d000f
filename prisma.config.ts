import { defineConfig } from "prisma/config";

// Prisma 7 reads no .env and `env("DATABASE_URL")` throws when unset, so the URL is optional here:
// `prisma generate` needs none. Migrations are created and applied by scripts/migrate.ts (Prisma's
// WebAssembly schema engine), because the CLI cannot download its native engine on these machines.
export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  ...(process.env.DATABASE_URL ? { datasource: { url: process.env.DATABASE_URL } } : {}),
});
