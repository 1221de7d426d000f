// The operation type and name of a document, computed once per parsed document: yoga's parser
// cache hands out the same DocumentNode for the same query text, so a WeakMap keyed by it turns
// getOperationAST (a walk over the definitions) into a lookup on the hot path.
import { getOperationAST, type DocumentNode } from "graphql";

export interface OperationLabels {
  type: string;
  name: string;
}

const cache = new WeakMap<object, Map<string, OperationLabels>>();

export function operationLabels(document: unknown, operationName: string | null | undefined, fallbackType: string): OperationLabels {
  const doc = document as DocumentNode;
  const key = operationName ?? "";
  let byName = cache.get(doc);
  let labels = byName?.get(key);
  if (!labels) {
    const op = getOperationAST(doc, operationName ?? undefined);
    labels = { type: op?.operation ?? fallbackType, name: op?.name?.value ?? "anonymous" };
    if (!byName) cache.set(doc, (byName = new Map()));
    if (byName.size < 100) byName.set(key, labels); // operationName comes from the client: bounded
  }
  return labels;
}
