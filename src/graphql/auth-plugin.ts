// Every operation needs a valid token: an envelop plugin, so the HTTP (yoga, SSE) and WebSocket
// (graphql-ws through yoga.getEnveloped) paths are covered by the same code.
import type { Plugin } from "graphql-yoga";
import { unauthenticated, type Context } from "./context.js";

export function useAuthentication(): Plugin<Context> {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      if (!args.contextValue.principal) setResultAndStopExecution({ errors: [unauthenticated()] });
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      if (!args.contextValue.principal) setResultAndStopExecution({ errors: [unauthenticated()] });
    },
  };
}
