// GraphQL hardening with well-kept plugins (graphql-armor, envelop), not hand-written checks:
// depth, cost, alias, directive and token limits, no field suggestions, introspection switch.
// They run as envelop plugins, so they guard the WebSocket path (graphql-ws through
// yoga.getEnveloped) exactly as HTTP. Body size and batching are yoga options (src/server/app.ts).
//
// The limits let a full page through (200 jobs with every field and 200 files each costs about
// 530,000 with depthCostFactor 1, depth 8) and refuse anything bigger, e.g. two such pages in one
// request or a third level of nested connections. Cost counts literal `first:` values only;
// variables are bounded by the connections' maxSize (200) together with the depth limit.
import { GraphQLError, type ValidationContext } from "graphql";
import type { Plugin as EnvelopPlugin } from "@envelop/core";
import { EnvelopArmorPlugin } from "@escape.tech/graphql-armor";
import { useDisableIntrospection } from "@envelop/disable-introspection";

export interface HardeningConfig {
  introspection: boolean;
  maxDepth: number;
  maxAliases: number;
  maxDirectives: number;
  maxTokens: number;
  maxCost: number;
}

export const HARDENING_DEFAULTS: HardeningConfig = {
  introspection: true,
  maxDepth: 10,
  maxAliases: 15,
  maxDirectives: 50,
  maxTokens: 5000,
  maxCost: 1_000_000,
};

export function queryTooComplex(message: string): GraphQLError {
  return new GraphQLError(message.replace(/^Syntax Error: /, ""), {
    // spec: false: HTTP 400 whatever the client's Accept header
    extensions: { code: "QUERY_TOO_COMPLEX", http: { status: 400, spec: false } },
  });
}

// Report as a validation error (the socket stays open on graphql-ws) with our own code.
const report = (ctx: ValidationContext | null, err: GraphQLError): void => ctx?.reportError(queryTooComplex(err.message));
const asValidationError = { propagateOnRejection: false, onReject: [report] };

export function hardeningPlugins(c: HardeningConfig = HARDENING_DEFAULTS): EnvelopPlugin[] {
  return [
    EnvelopArmorPlugin({
      maxTokens: {
        n: c.maxTokens,
        onReject: [
          (_ctx, err) => {
            throw queryTooComplex(err.message); // parse phase: no validation context to report to
          },
        ],
      },
      maxDepth: { n: c.maxDepth, flattenFragments: true, ...asValidationError },
      maxAliases: { n: c.maxAliases, ...asValidationError },
      maxDirectives: { n: c.maxDirectives, ...asValidationError },
      costLimit: { maxCost: c.maxCost, depthCostFactor: 1, flattenFragments: true, ...asValidationError },
      blockFieldSuggestion: { enabled: true },
    }) as EnvelopPlugin,
    useDisableIntrospection({ disableIf: () => !c.introspection }) as EnvelopPlugin,
  ];
}
