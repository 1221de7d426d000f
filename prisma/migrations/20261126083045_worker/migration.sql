-- AlterTable
ALTER TABLE "file" ADD COLUMN     "etag" VARCHAR(512),
ADD COLUMN     "final_url" VARCHAR(2200),
ADD COLUMN     "last_modified" VARCHAR(64),
ADD COLUMN     "sha256" VARCHAR(64);

-- AlterTable
ALTER TABLE "job" ADD COLUMN     "http_credentials" JSONB,
ADD COLUMN     "http_headers" JSONB,
ADD COLUMN     "lease_expires_at" TIMESTAMPTZ(3),
ADD COLUMN     "lease_holder" VARCHAR(128),
ADD COLUMN     "lease_token" BIGINT NOT NULL DEFAULT 0,
ADD COLUMN     "max_bytes_per_second" BIGINT;

-- CreateIndex
CREATE INDEX "job_lease_expiry_idx" ON "job"("lease_expires_at");
