// The read-path baseline (bench/readpath.ts): a bare graphql-yoga server, nothing but yoga's
// defaults, on node:http. It serves `{ hello }` and, when given a file, `jobs(first:)` from memory:
// the file holds the `jobs` field of a haul response (edges of nodes), so the bare server answers
// with the same shape and the same bytes as haul, without a database, authentication or hardening.
//
//   node --import tsx bench/bare-yoga.ts [page.json]    prints {"url":"http://127.0.0.1:<port>/graphql"}
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createSchema, createYoga } from "graphql-yoga";

const pageFile = process.argv[2];
const page = pageFile ? (JSON.parse(fs.readFileSync(pageFile, "utf8")) as { edges: unknown[] }) : { edges: [] };

const typeDefs = /* GraphQL */ `
  scalar BigInt
  enum JobState { QUEUED CONNECTING TRANSFERRING SUSPENDED ERROR TRANSIENT_ERROR TRANSFERRED ACKNOWLEDGED CANCELLED }
  type Query {
    hello: String!
    jobs(first: Int): JobConnection!
  }
  type JobConnection { edges: [JobEdge!]! }
  type JobEdge { node: Job! }
  type Job {
    id: ID!
    displayName: String!
    state: JobState!
    progress: JobProgress!
    files(first: Int): FileConnection!
  }
  type JobProgress { bytesTransferred: BigInt! }
  type FileConnection { edges: [FileEdge!]! }
  type FileEdge { node: File! }
  type File {
    id: ID!
    localPath: String!
    bytesTransferred: BigInt!
  }
`;

const schema = createSchema({
  typeDefs,
  resolvers: {
    BigInt: { serialize: (v: unknown) => String(v), parseValue: (v: unknown) => BigInt(v as string), parseLiteral: () => null },
    Query: {
      hello: () => "world",
      jobs: (_: unknown, args: { first?: number }) => ({ edges: page.edges.slice(0, args.first ?? 50) }),
    },
  },
});

const yoga = createYoga({ schema, logging: false });
const server = http.createServer(yoga);
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}/graphql` })}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
