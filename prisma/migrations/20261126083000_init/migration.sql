-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateEnum
CREATE TYPE "JobState" AS ENUM ('QUEUED', 'CONNECTING', 'TRANSFERRING', 'SUSPENDED', 'ERROR', 'TRANSIENT_ERROR', 'TRANSFERRED', 'ACKNOWLEDGED', 'CANCELLED');

-- CreateEnum
CREATE TYPE "JobType" AS ENUM ('DOWNLOAD', 'UPLOAD', 'UPLOAD_REPLY');

-- CreateEnum
CREATE TYPE "JobPriority" AS ENUM ('FOREGROUND', 'HIGH', 'NORMAL', 'LOW');

-- CreateEnum
CREATE TYPE "ErrorContext" AS ENUM ('NONE', 'UNKNOWN', 'GENERAL_QUEUE_MANAGER', 'QUEUE_MANAGER_NOTIFICATION', 'LOCAL_FILE', 'REMOTE_FILE', 'GENERAL_TRANSPORT', 'REMOTE_APPLICATION', 'SERVER_CERTIFICATE_CALLBACK');

-- CreateEnum
CREATE TYPE "JobEventKind" AS ENUM ('CREATED', 'STATE_CHANGED', 'FILES_ADDED', 'PROPERTIES_CHANGED', 'OWNER_CHANGED');

-- CreateTable
CREATE TABLE "job" (
    "id" UUID NOT NULL,
    "type" "JobType" NOT NULL,
    "display_name" VARCHAR(256) NOT NULL,
    "description" VARCHAR(1024) NOT NULL DEFAULT '',
    "priority" "JobPriority" NOT NULL DEFAULT 'NORMAL',
    "state" "JobState" NOT NULL DEFAULT 'SUSPENDED',
    "owner" VARCHAR(128) NOT NULL,
    "minimum_retry_delay" INTEGER NOT NULL DEFAULT 600,
    "no_progress_timeout" INTEGER NOT NULL DEFAULT 1209600,
    "maximum_download_time" INTEGER NOT NULL DEFAULT 7776000,
    "error_context" "ErrorContext",
    "error_code" VARCHAR(64),
    "error_message" VARCHAR(2048),
    "error_file_id" UUID,
    "error_http_status" INTEGER,
    "error_count" INTEGER NOT NULL DEFAULT 0,
    "files_total" INTEGER NOT NULL DEFAULT 0,
    "files_transferred" INTEGER NOT NULL DEFAULT 0,
    "bytes_total" BIGINT DEFAULT 0,
    "bytes_transferred" BIGINT NOT NULL DEFAULT 0,
    "retry_at" TIMESTAMPTZ(3),
    "no_progress_since" TIMESTAMPTZ(3),
    "active_since" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "modified_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "transfer_completed_at" TIMESTAMPTZ(3),
    "version" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "job_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "file" (
    "id" UUID NOT NULL,
    "job_id" UUID NOT NULL,
    "position" INTEGER NOT NULL,
    "remote_url" VARCHAR(2200) NOT NULL,
    "local_path" VARCHAR(1024) NOT NULL,
    "bytes_total" BIGINT,
    "bytes_transferred" BIGINT NOT NULL DEFAULT 0,
    "transferred" BOOLEAN NOT NULL DEFAULT false,
    "completed" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "file_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "job_event" (
    "seq" BIGSERIAL NOT NULL,
    "job_id" UUID NOT NULL,
    "owner" VARCHAR(128) NOT NULL,
    "kind" "JobEventKind" NOT NULL,
    "previous_state" "JobState",
    "state" "JobState" NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "actor" VARCHAR(128),
    "error_context" "ErrorContext",
    "error_code" VARCHAR(64),
    "error_message" VARCHAR(2048),
    "error_file_id" UUID,
    "error_http_status" INTEGER,
    "data" JSONB,

    CONSTRAINT "job_event_pkey" PRIMARY KEY ("seq")
);

-- CreateIndex
CREATE INDEX "job_state_created_idx" ON "job"("state", "created_at", "id");

-- CreateIndex
CREATE INDEX "job_owner_state_created_idx" ON "job"("owner", "state", "created_at", "id");

-- CreateIndex
CREATE INDEX "job_created_idx" ON "job"("created_at", "id");

-- CreateIndex
CREATE INDEX "job_claim_idx" ON "job"("state", "priority", "created_at");

-- CreateIndex
CREATE UNIQUE INDEX "file_job_position_key" ON "file"("job_id", "position");

-- CreateIndex
CREATE INDEX "job_event_job_seq_idx" ON "job_event"("job_id", "seq");

-- AddForeignKey
ALTER TABLE "file" ADD CONSTRAINT "file_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "job"("id") ON DELETE CASCADE ON UPDATE CASCADE;
