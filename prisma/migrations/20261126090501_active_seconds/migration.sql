-- AlterTable
ALTER TABLE "job" ADD COLUMN     "active_seconds" INTEGER NOT NULL DEFAULT 0;
