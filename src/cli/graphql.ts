// Typed GraphQL documents for the CLI (gql.tada). The schema's types come from
// ./graphql-env.d.ts, generated from schema.graphql by `npm run cli:gen` (see ./codegen.ts); every
// document written with `graphql()` below is type-checked against it by `tsc`, and its result and
// variables types are inferred from it. Scalars travel as strings: DateTime is ISO 8601, BigInt a
// decimal string (exact past 2^53).
import { initGraphQLTada } from "gql.tada";
import type { introspection } from "./graphql-env.js";

export const graphql = initGraphQLTada<{
  introspection: introspection;
  scalars: { DateTime: string; BigInt: string; ID: string };
  // Fragments are spread for reuse, not for colocation: no masking, so results read directly.
  disableMasking: true;
}>();

export type { FragmentOf, ResultOf, VariablesOf, TadaDocumentNode } from "gql.tada";
