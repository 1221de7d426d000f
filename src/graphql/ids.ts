// Global object ids (Relay): base64 of "<Type>:<uuid>". A bare job UUID is accepted as well, so the
// ids shown in logs and by the CLI work everywhere. A malformed id is BAD_USER_INPUT, never INTERNAL.
import { GraphQLError } from "graphql";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TYPES = new Set(["Job", "File"]);

export function encodeId(typename: string, id: string | number | bigint): string {
  return Buffer.from(`${typename}:${id}`, "utf8").toString("base64");
}

function bad(globalId: string): GraphQLError {
  return new GraphQLError(`not a valid id: ${JSON.stringify(globalId.slice(0, 80))}`, { extensions: { code: "BAD_USER_INPUT" } });
}

export function decodeId(globalId: string): { typename: string; id: string } {
  if (UUID.test(globalId)) return { typename: "Job", id: globalId.toLowerCase() };
  if (globalId.length > 200 || !/^[A-Za-z0-9+/=_-]+$/.test(globalId)) throw bad(globalId);
  const text = Buffer.from(globalId, "base64").toString("utf8");
  const i = text.indexOf(":");
  const typename = text.slice(0, i);
  const id = text.slice(i + 1);
  if (i < 0 || !TYPES.has(typename) || !UUID.test(id)) throw bad(globalId);
  return { typename, id: id.toLowerCase() };
}

/** The UUID of a job from a global id (or a bare UUID); BAD_USER_INPUT for anything else. */
export function jobUuid(globalId: string): string {
  const { typename, id } = decodeId(globalId);
  if (typename !== "Job") throw bad(globalId);
  return id;
}
