// Counting jobs for `jobs.totalCount`, capped. Prisma's `count({ where, take })` wraps the filter in
// `SELECT ... ORDER BY id LIMIT n`, which makes Postgres read and sort every matching row before it
// can stop (28 ms at a million jobs for 60,000 SUSPENDED ones). Without the ORDER BY, the LIMIT
// stops the scan after `cap` index entries, in any order: the count of a set does not need one.
import type { JobState } from "../generated/prisma/client.js";

/** What a listing may be narrowed by: the same conditions as the page query of `jobs`. */
export interface JobCountFilter {
  /** job.state IN (...); must not be empty */
  states: readonly JobState[];
  /** job.owner = ...; undefined: every owner */
  owner?: string;
}

/** Anything that runs a parameterised raw query (a Prisma client or transaction client). */
export interface RawQuerier {
  $queryRawUnsafe<T = unknown>(sql: string, ...values: unknown[]): Promise<T>;
}

/**
 * How many jobs match `filter`, counting at most `cap` of them: exact below the cap, `cap` at or
 * above it. One statement whose cost is bounded by `cap` index entries, however large the table.
 */
export async function cappedJobCount(db: RawQuerier, filter: JobCountFilter, cap: number): Promise<number> {
  if (!Number.isSafeInteger(cap) || cap < 0) throw new RangeError(`cap must be a whole number >= 0, got ${cap}`);
  if (filter.states.length === 0 || cap === 0) return 0;
  // One placeholder per state (at most nine), as the page query's `state IN (...)`: the planner
  // sees the same condition and picks the same index.
  const params: unknown[] = [...filter.states];
  let where = `state IN (${filter.states.map((_, i) => `$${i + 1}::"JobState"`).join(", ")})`;
  if (filter.owner !== undefined) {
    params.push(filter.owner);
    where += ` AND owner = $${params.length}`;
  }
  params.push(cap);
  const rows = await db.$queryRawUnsafe<{ n: number }[]>(
    `SELECT count(*)::int AS n FROM (SELECT 1 FROM job WHERE ${where} LIMIT $${params.length}) AS capped`,
    ...params,
  );
  return rows[0]?.n ?? 0;
}
