// An envelop plugin timing every GraphQL operation into haul_graphql_operation_duration_seconds.
import type { Plugin } from "graphql-yoga";
import { getOperationAST, type DocumentNode } from "graphql";
import type { Metrics } from "./metrics.js";

export function useOperationMetrics(metrics: Metrics): Plugin {
  return {
    onExecute({ args }) {
      const start = performance.now();
      const op = getOperationAST(args.document as DocumentNode, args.operationName ?? undefined);
      const labels = { operation_type: op?.operation ?? "unknown", operation_name: op?.name?.value ?? "anonymous" };
      return {
        onExecuteDone({ result }) {
          const failed = "errors" in (result as object) && Array.isArray((result as { errors?: unknown[] }).errors);
          metrics.operationDuration.observe({ ...labels, outcome: failed ? "error" : "ok" }, (performance.now() - start) / 1000);
        },
      };
    },
  };
}
