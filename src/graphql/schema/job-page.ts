// The `jobs` connection straight through the driver, for the shapes a client lists with: a page of
// jobs (first/after, the JobFilter) whose nodes select columns the tables below know, optionally
// with `files(first:)` of the same kind, and totalCounts. One statement for the page, one for the
// files of its jobs, one for the capped count when selected: what Prisma ran, without Prisma's
// engine, Pothos's query planning (selection mapping, prismaConnection, relatedConnection) or the
// objects both allocate. The connection, edge and pageInfo objects are built exactly as
// @pothos/plugin-prisma builds them (wrapConnectionResult), so the schema's own field resolvers
// serve them. Anything else (before/last, files(after:), a file's `job`, aliases of `files`,
// directives on the connection, a cursor that is not canonical, any error) takes the Pothos path,
// unchanged: its answers and errors are the reference (test/integration/read-path.test.ts compares
// the two byte for byte).
import { encodeBase64 } from "@pothos/core";
import { getArgumentValues, type FieldNode, type GraphQLField, type GraphQLFieldResolver, type GraphQLResolveInfo, type GraphQLSchema, type GraphQLObjectType } from "graphql";
import type { Context } from "../context.js";
import { me } from "../context.js";
import { ownerScope } from "../../auth/policy.js";
import { cappedJobCount } from "../../store/job-counts.js";
import { readFilesOfJobs, readJobPage, readableFileColumns, readableJobColumns } from "../../store/job-reads.js";
import { FILE_ALWAYS, FILE_FIELDS, JOB_ALWAYS, JOB_FIELDS, columnsOf, fieldsOf } from "./job-select.js";
import { listedStates, TOTAL_COUNT_CAP } from "./job.js";

/** As the `jobs` and `files` connections are configured (job.ts, builder.ts). */
const JOBS_DEFAULT = 50;
const JOBS_MAX = 200;
const FILES_DEFAULT = 50;
const FILES_MAX = 200;

/** Where a job row read here keeps its `files` connection, for the Job.files resolver. */
const FILES = Symbol("haul.job.files");

const UUID_CURSOR = /^GPC:S:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
const cursorOf = (id: string): string => encodeBase64(`GPC:S:${id}`);

/** The job UUID of a cursor as this API encodes it, or null (then the Pothos path judges it). */
function canonicalCursor(c: string): string | null {
  if (c.length > 100) return null;
  const m = UUID_CURSOR.exec(Buffer.from(c, "base64").toString("utf8"));
  return m && cursorOf(m[1]!) === c ? m[1]! : null;
}

const CONNECTION_FIELDS = new Set(["edges", "pageInfo", "totalCount", "__typename"]);
const EDGE_FIELDS = new Set(["cursor", "node", "__typename"]);

interface ConnectionShape {
  nodeFields: FieldNode[];
  totalCount: boolean;
}

/** A connection's selection (edges { cursor node }, pageInfo, totalCount), or null when it holds anything else. */
function connectionShape(nodes: readonly FieldNode[], info: GraphQLResolveInfo): ConnectionShape | null {
  const nodeFields: FieldNode[] = [];
  let totalCount = false;
  let other = false;
  for (const conn of nodes) {
    const fields = fieldsOf(conn.selectionSet, info.fragments);
    if (!fields) return null;
    for (const f of fields) {
      const name = f.name.value;
      if (!CONNECTION_FIELDS.has(name) || f.directives?.length) return null;
      if (name === "totalCount") totalCount = true;
      else if (name !== "__typename") other = true;
      if (name !== "edges") continue;
      const edgeFields = fieldsOf(f.selectionSet, info.fragments);
      if (!edgeFields) return null;
      for (const ef of edgeFields) {
        if (!EDGE_FIELDS.has(ef.name.value) || ef.directives?.length) return null;
        if (ef.name.value === "node" && !fieldsOf(ef.selectionSet, info.fragments, nodeFields)) return null;
      }
    }
  }
  // Only totalCount (Pothos then reads no rows at all): rare, left to Pothos.
  if (!other) return null;
  return { nodeFields, totalCount };
}

interface FilesPlan {
  columns: string[];
  take: number;
  args: Record<string, unknown>;
  totalCount: boolean;
}

interface PagePlan {
  columns: string[];
  files: FilesPlan | null;
}

/** What the fast path reads for this `jobs` selection, or null when it does not recognise it. */
function planPage(info: GraphQLResolveInfo, filesField: GraphQLField<unknown, unknown>): PagePlan | null {
  const shape = connectionShape(info.fieldNodes, info);
  if (!shape) return null;
  const jobCols = columnsOf(shape.nodeFields, JOB_FIELDS, JOB_ALWAYS);
  if (!jobCols || !readableJobColumns([...jobCols])) return null;
  const filesNodes = shape.nodeFields.filter((f) => f.name.value === "files");
  if (filesNodes.length === 0) return { columns: [...jobCols], files: null };
  const key = (f: FieldNode) => f.alias?.value ?? f.name.value;
  // One response key (GraphQL validation then guarantees the same arguments), no directives.
  if (filesNodes.some((f) => key(f) !== key(filesNodes[0]!) || f.directives?.length)) return null;
  const fileShape = connectionShape(filesNodes, info);
  if (!fileShape) return null;
  if (fileShape.nodeFields.some((f) => f.name.value === "job" || f.directives?.length)) return null;
  const fileCols = columnsOf(fileShape.nodeFields, FILE_FIELDS, FILE_ALWAYS);
  if (!fileCols || !readableFileColumns([...fileCols])) return null;
  const args = getArgumentValues(filesField, filesNodes[0]!, info.variableValues) as Record<string, unknown>;
  const first = args.first as number | null | undefined;
  if (args.after != null || args.before != null || args.last != null || (first != null && first < 0)) return null;
  return {
    columns: [...jobCols],
    files: { columns: [...fileCols], take: Math.min(first ?? FILES_DEFAULT, FILES_MAX) + 1, args, totalCount: fileShape.totalCount },
  };
}

/** @pothos/plugin-prisma's wrapConnectionResult, forward pages only (no before/last). */
function connectionOf(parent: unknown, rows: Record<string, unknown>[], args: Record<string, unknown>, take: number, totalCount: unknown) {
  const full = rows.length === take;
  const nodes = full ? rows.slice(0, -1) : rows;
  const connection = {
    parent,
    args,
    totalCount,
    edges: [] as { connection: unknown; cursor: string; node: Record<string, unknown> }[],
    pageInfo: { startCursor: null as string | null, endCursor: null as string | null, hasPreviousPage: args.after != null, hasNextPage: full },
  };
  connection.edges = nodes.map((node) => ({ connection, cursor: cursorOf(node.id as string), node }));
  connection.pageInfo.startCursor = connection.edges[0]?.cursor ?? null;
  connection.pageInfo.endCursor = connection.edges[connection.edges.length - 1]?.cursor ?? null;
  return connection;
}

async function readPage(plan: PagePlan, root: unknown, args: Record<string, unknown>, ctx: Context, states: string[], owner: string | undefined, after: string | undefined, take: number) {
  const rows = await readJobPage(ctx.db, { states, owner, after, take, columns: plan.columns, fileCount: !!plan.files?.totalCount });
  const f = plan.files;
  if (f) {
    const files = await readFilesOfJobs(ctx.db, rows.map((r) => r.id as string), f.columns, f.take);
    const byJob = new Map<string, Record<string, unknown>[]>();
    for (const file of files) {
      const list = byJob.get(file.jobId as string);
      if (list) list.push(file);
      else byJob.set(file.jobId as string, [file]);
    }
    for (const row of rows) {
      const count = row.filesCount;
      delete row.filesCount;
      Object.defineProperty(row, FILES, { value: connectionOf(row, byJob.get(row.id as string) ?? [], f.args, f.take, f.totalCount ? count : undefined) });
    }
  }
  const db = { $queryRawUnsafe: <T>(sql: string, ...values: unknown[]) => ctx.db.query(sql, values) as Promise<T> };
  return connectionOf(root, rows, args, take, () => cappedJobCount(db, { states: states as never, owner }, TOTAL_COUNT_CAP));
}

/**
 * Serves `jobs` (and the `files` of its nodes) through the driver when the selection and arguments
 * are recognised; the resolvers Pothos built stay the fallback. Called once on the built schema.
 */
export function installJobPageFastPath(schema: GraphQLSchema): void {
  const jobsField = schema.getQueryType()!.getFields().jobs!;
  const filesField = (schema.getType("Job") as GraphQLObjectType).getFields().files!;
  const pothosJobs = jobsField.resolve as GraphQLFieldResolver<unknown, Context>;
  const pothosFiles = filesField.resolve as GraphQLFieldResolver<unknown, Context>;

  jobsField.resolve = (root, args, ctx: Context, info) => {
    const a = args as { first?: number | null; after?: string | null; before?: string | null; last?: number | null; filter?: Parameters<typeof listedStates>[0] };
    if (a.before != null || a.last != null || (a.first != null && a.first < 0)) return pothosJobs(root, args, ctx, info);
    let after: string | undefined;
    if (a.after != null) {
      const id = canonicalCursor(a.after);
      if (!id) return pothosJobs(root, args, ctx, info);
      after = id;
    }
    const plan = planPage(info, filesField as GraphQLField<unknown, unknown>);
    if (!plan) return pothosJobs(root, args, ctx, info);
    let owner: string | undefined;
    try {
      owner = ownerScope(me(ctx), a.filter ?? {});
    } catch {
      return pothosJobs(root, args, ctx, info); // its error, as the Pothos path words it
    }
    const take = Math.min(a.first ?? JOBS_DEFAULT, JOBS_MAX) + 1;
    return readPage(plan, root, args, ctx, listedStates(a.filter), owner, after, take);
  };

  filesField.resolve = (job, args, ctx: Context, info) => {
    const loaded = (job as { [FILES]?: unknown })[FILES];
    return loaded !== undefined ? loaded : pothosFiles(job, args, ctx, info);
  };
}
