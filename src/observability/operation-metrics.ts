// An envelop plugin timing every GraphQL operation into haul_graphql_operation_duration_seconds.
import type { Plugin } from "graphql-yoga";
import type { Metrics } from "./metrics.js";
import { operationLabels } from "./operation-labels.js";

export function useOperationMetrics(metrics: Metrics): Plugin {
  // One labelled child per (type, name, outcome), so an observation does not hash the labels again.
  const children = new Map<string, ReturnType<Metrics["operationDuration"]["labels"]>>();
  const child = (type: string, name: string, outcome: string) => {
    const key = `${type}\0${name}\0${outcome}`;
    let c = children.get(key);
    if (!c) {
      c = metrics.operationDuration.labels({ operation_type: type, operation_name: name, outcome });
      if (children.size < 1000) children.set(key, c);
    }
    return c;
  };
  return {
    onExecute({ args }) {
      const start = performance.now();
      const op = operationLabels(args.document, args.operationName, "unknown");
      return {
        onExecuteDone({ result }) {
          const failed = "errors" in (result as object) && Array.isArray((result as { errors?: unknown[] }).errors);
          child(op.type, op.name, failed ? "error" : "ok").observe((performance.now() - start) / 1000);
        },
      };
    },
  };
}
