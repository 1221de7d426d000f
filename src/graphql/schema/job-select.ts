// Column selection for the hot reads (`job(id)`, `jobs`): Pothos plans `include` queries, and Prisma
// then reads and converts every column of every row (35 for a job, 14 for a file). Reading a page
// of 50 jobs x 3 files that way costs about twice the CPU of reading only the columns the document
// asks for. `narrowJobQuery` turns the query Pothos planned into a `select` of the columns the
// GraphQL selection needs (relations and counts kept exactly as Pothos planned them), and leaves it
// unchanged when the selection holds anything it does not know: selecting too much is only slower,
// selecting too little would be wrong.
import type { FieldNode, FragmentDefinitionNode, GraphQLResolveInfo, SelectionSetNode } from "graphql";

type Columns = Set<string>;

/** GraphQL field of Job -> the job columns its resolver reads. Relations are listed under RELATIONS. */
export const JOB_FIELDS: Record<string, readonly string[]> = {
  __typename: [],
  id: ["id"],
  uuid: ["id"],
  displayName: ["displayName"],
  description: ["description"],
  type: ["type"],
  priority: ["priority"],
  state: ["state"],
  owner: ["owner"],
  progress: ["bytesTotal", "bytesTransferred", "filesTotal", "filesTransferred"],
  times: ["createdAt", "modifiedAt", "transferCompletedAt"],
  error: ["errorContext", "errorCode", "errorMessage", "errorFileId", "errorHttpStatus"],
  errorCount: ["errorCount"],
  minimumRetryDelay: ["minimumRetryDelay"],
  noProgressTimeout: ["noProgressTimeout"],
  maximumDownloadTime: ["maximumDownloadTime"],
  retryAt: ["retryAt"],
  maxBytesPerSecond: ["maxBytesPerSecond"],
  hasCredentials: ["httpCredentials"],
  httpHeaderNames: ["httpHeaders"],
  files: [],
};
/** Read by haul itself whatever the selection: the id (cursors, node ids), the owner (authorization). */
export const JOB_ALWAYS = ["id", "owner", "createdAt"];

export const FILE_FIELDS: Record<string, readonly string[]> = {
  __typename: [],
  id: ["id"],
  uuid: ["id"],
  remoteUrl: ["remoteUrl"],
  localPath: ["localPath"],
  position: ["position"],
  bytesTotal: ["bytesTotal"],
  bytesTransferred: ["bytesTransferred"],
  transferred: ["transferred"],
  completed: ["completed"],
  sha256: ["sha256"],
  job: [],
};
export const FILE_ALWAYS = ["id", "jobId", "position"];

/** The fields selected on an object, through fragments; null when a directive or shape is unexpected. */
export function fieldsOf(set: SelectionSetNode | undefined, fragments: Record<string, FragmentDefinitionNode>, out: FieldNode[] = [], depth = 0): FieldNode[] | null {
  if (!set || depth > 20) return depth > 20 ? null : out;
  for (const sel of set.selections) {
    if (sel.kind === "Field") out.push(sel);
    else {
      const inner = sel.kind === "InlineFragment" ? sel.selectionSet : fragments[sel.name.value]?.selectionSet;
      if (!inner || !fieldsOf(inner, fragments, out, depth + 1)) return null;
    }
  }
  return out;
}

/** The columns of one object type a selection set needs, or null when something is unknown. */
export function columnsOf(fields: FieldNode[], table: Record<string, readonly string[]>, always: readonly string[]): Columns | null {
  const cols = new Set(always);
  for (const f of fields) {
    const c = Object.hasOwn(table, f.name.value) ? table[f.name.value] : undefined;
    if (!c) return null;
    for (const x of c) cols.add(x);
  }
  return cols;
}

/** The node fields of a connection field's selections (edges { node { ... } }), through fragments. */
function nodeFields(connections: FieldNode[], fragments: Record<string, FragmentDefinitionNode>): FieldNode[] | null {
  const nodes: FieldNode[] = [];
  for (const conn of connections) {
    const connFields = fieldsOf(conn.selectionSet, fragments);
    if (!connFields) return null;
    for (const cf of connFields) {
      if (cf.name.value !== "edges") continue;
      const edgeFields = fieldsOf(cf.selectionSet, fragments);
      if (!edgeFields) return null;
      for (const ef of edgeFields) {
        if (ef.name.value !== "node") continue;
        if (!fieldsOf(ef.selectionSet, fragments, nodes)) return null;
      }
    }
  }
  return nodes;
}

const asSelect = (cols: Columns): Record<string, true> => Object.fromEntries([...cols].map((c) => [c, true]));

/** Pothos's arguments for a relation (`true` or an object with `include`) as a `select` of `cols`. */
function narrowRelation(planned: unknown, cols: Columns): unknown {
  if (planned === true) return { select: asSelect(cols) };
  if (!planned || typeof planned !== "object") return planned;
  const { include, select, ...args } = planned as { include?: Record<string, unknown>; select?: unknown };
  if (select !== undefined) return planned; // already a select: leave it
  return { ...args, select: { ...asSelect(cols), ...(include ?? {}) } };
}

/**
 * The query Pothos planned for Job rows (`{ include?, take?, skip?, cursor? ... }`) as a `select` of
 * the columns `jobFields` (the Job fields of the document, through fragments) need; the files
 * relation narrowed the same way. Unchanged when anything is unknown or already a select.
 */
function narrow<Q extends object>(query: Q, jobFields: FieldNode[] | null, fragments: Record<string, FragmentDefinitionNode>): Q {
  const q = query as { include?: Record<string, unknown>; select?: unknown };
  if (!jobFields || q.select !== undefined) return query;
  const jobCols = columnsOf(jobFields, JOB_FIELDS, JOB_ALWAYS);
  if (!jobCols) return query;
  const { include, ...rest } = q;
  const relations: Record<string, unknown> = { ...(include ?? {}) };
  if (relations.files !== undefined) {
    const fileFields = nodeFields(
      jobFields.filter((f) => f.name.value === "files"),
      fragments,
    );
    const fileCols = fileFields && columnsOf(fileFields, FILE_FIELDS, FILE_ALWAYS);
    if (!fileCols) return query;
    relations.files = narrowRelation(relations.files, fileCols);
  }
  return { ...rest, select: { ...asSelect(jobCols), ...relations } } as Q;
}

/** For `job(id)`: the fields selected on the job. */
export function narrowJobQuery<Q extends object>(query: Q, info: GraphQLResolveInfo): Q {
  const fields: FieldNode[] = [];
  for (const node of info.fieldNodes) if (!fieldsOf(node.selectionSet, info.fragments, fields)) return query;
  return narrow(query, fields, info.fragments);
}

/** For `jobs`: the fields selected on the connection's nodes. */
export function narrowJobConnectionQuery<Q extends object>(query: Q, info: GraphQLResolveInfo): Q {
  return narrow(query, nodeFields([...info.fieldNodes], info.fragments), info.fragments);
}

/** The columns of a narrowed query when it selects columns only (no relation, no count), else null. */
export function scalarColumns(query: object): string[] | null {
  const keys = Object.keys(query);
  if (keys.length !== 1 || keys[0] !== "select") return null;
  const select = (query as { select: Record<string, unknown> }).select;
  const cols = Object.keys(select);
  return cols.every((c) => select[c] === true) ? cols : null;
}
