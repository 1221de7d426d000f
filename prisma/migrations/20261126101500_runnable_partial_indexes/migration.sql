-- Hand-written (Prisma's schema language cannot express partial indexes). The names start with
-- "haul_manual_": `npm run db:migration:create` leaves such indexes alone (scripts/migrate.ts).

-- The worker's claim: runnable jobs only, in claim order. Stays small however many finished
-- jobs the table holds, so claiming at a million jobs costs what it costs at ten thousand.
CREATE INDEX "haul_manual_job_runnable_idx" ON "job" ("priority", "created_at", "id")
  WHERE "state" IN ('QUEUED', 'TRANSIENT_ERROR');

-- The sweeps: no-progress timeouts, and the inactivity cancel over unfinished jobs.
CREATE INDEX "haul_manual_job_transient_idx" ON "job" ("no_progress_since")
  WHERE "state" = 'TRANSIENT_ERROR';
CREATE INDEX "haul_manual_job_unfinished_modified_idx" ON "job" ("modified_at")
  WHERE "state" NOT IN ('ACKNOWLEDGED', 'CANCELLED');
