// The Pothos schema builder: plugins, scalars and context type. No object types are defined here;
// they live in schema/<type>.ts, each type's queries, mutations and subscriptions beside it.
import SchemaBuilder from "@pothos/core";
import PrismaPlugin from "@pothos/plugin-prisma";
import RelayPlugin from "@pothos/plugin-relay";
import { GraphQLError, Kind } from "graphql";
import type PrismaTypes from "../generated/pothos-prisma-types.js";
import { getDatamodel } from "../generated/pothos-prisma-types.js";
import type { Context } from "./context.js";
import { decodeId, encodeId } from "./ids.js";

export const builder = new SchemaBuilder<{
  PrismaTypes: PrismaTypes;
  Context: Context;
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    BigInt: { Input: bigint; Output: bigint };
    ID: { Input: string; Output: string };
  };
}>({
  plugins: [PrismaPlugin, RelayPlugin],
  defaultFieldNullability: false,
  prisma: {
    client: (ctx) => ctx.prisma,
    dmmf: getDatamodel(),
    exposeDescriptions: false,
    filterConnectionTotalCount: true,
    onUnusedQuery: null,
    maxConnectionSize: 200,
    defaultConnectionSize: 50,
  },
  relay: {
    encodeGlobalID: encodeId,
    decodeGlobalID: decodeId,
    nodesQueryOptions: false,
    cursorType: "String",
  },
});

function bad(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: "BAD_USER_INPUT" } });
}

builder.scalarType("DateTime", {
  description: "A point in time, ISO 8601 in UTC with milliseconds, e.g. 2026-11-26T08:30:00.000Z",
  serialize: (v) => (v instanceof Date ? v.toISOString() : new Date(v as string).toISOString()),
  parseValue: (v) => {
    const d = typeof v === "string" ? new Date(v) : new Date(NaN);
    if (Number.isNaN(d.getTime())) throw bad(`not an ISO 8601 date-time: ${JSON.stringify(v)}`);
    return d;
  },
});

builder.scalarType("BigInt", {
  description:
    "An exact whole number of any size (byte counts), serialised as a decimal string because GraphQL's Int is 32-bit. Accepts a string or an integer as input.",
  serialize: (v) => v.toString(),
  parseValue: (v) => {
    if (typeof v === "number" && Number.isSafeInteger(v)) return BigInt(v);
    if (typeof v === "string" && /^-?\d{1,30}$/.test(v)) return BigInt(v);
    throw bad(`not a whole number: ${JSON.stringify(v)}`);
  },
  parseLiteral: (ast) => {
    if (ast.kind === Kind.INT || (ast.kind === Kind.STRING && /^-?\d{1,30}$/.test(ast.value))) return BigInt(ast.value);
    throw bad("BigInt expects a whole number or a decimal string");
  },
});
