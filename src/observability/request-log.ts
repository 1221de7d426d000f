// One structured log line per GraphQL operation, with the request id (the client's X-Request-Id,
// or a new one, echoed in the response), the caller, the duration and the error codes with their
// correlation ids (the masked error's details are logged under the same correlation id).
import type { Plugin } from "graphql-yoga";
import type { GraphQLError } from "graphql";
import type { Logger } from "../logger.js";
import type { Context } from "../graphql/context.js";
import { operationLabels } from "./operation-labels.js";

export function useRequestLog(logger: Logger): Plugin<Context & { requestId?: string }> {
  const noop = (_result: unknown) => {};
  const log = (kind: "execute" | "subscribe", args: { document: unknown; operationName?: string | null; contextValue: Context & { requestId?: string } }) => {
    if (!logger.isLevelEnabled("info")) return noop; // e.g. HAUL_LOG_LEVEL=warn: nothing to build
    const start = performance.now();
    const op = operationLabels(args.document, args.operationName, kind);
    const base = {
      requestId: args.contextValue.requestId,
      user: args.contextValue.principal?.user,
      operation: `${op.type} ${op.name}`,
    };
    return (result: unknown) => {
      const errors = (result as { errors?: readonly GraphQLError[] }).errors ?? [];
      logger.info(
        {
          ...base,
          ms: Math.round((performance.now() - start) * 10) / 10,
          ...(errors.length
            ? { errors: errors.map((e) => ({ code: e.extensions?.code, correlationId: e.extensions?.correlationId })) }
            : {}),
        },
        kind === "subscribe" ? "graphql subscription started" : "graphql operation",
      );
    };
  };
  return {
    onExecute({ args }) {
      const done = log("execute", args as never);
      return { onExecuteDone: ({ result }) => done(result) };
    },
    onSubscribe({ args }) {
      const done = log("subscribe", args as never);
      return { onSubscribeResult: ({ result }) => done(result) };
    },
  };
}
