// The one table of error codes the API returns in `extensions.code` (api.md), and the mapping from
// domain errors. Anything else is masked ("Unexpected error", code INTERNAL) and logged with a
// correlation id; stack traces and SQL never reach a client.
import { GraphQLError } from "graphql";
import { DomainError } from "../domain/errors.js";
import { ConflictError } from "../store/jobs.js";

export const ERROR_CODES = {
  INVALID_STATE: "the call is not legal in the job's current state (BITS BG_E_INVALID_STATE)",
  EMPTY: "resume of a job that has no files (BITS BG_E_EMPTY)",
  NOT_FOUND: "no such job or file (or not visible to the caller)",
  BAD_USER_INPUT: "an argument is malformed or out of range; the message names it",
  FORBIDDEN: "the caller may not do this",
  UNAUTHENTICATED: "no valid credentials",
  TOO_MANY_FILES: "the job would hold more files than allowed (200 by default, BITS MaxFilesPerJob)",
  FILE_RENAME_FAILED: "completeJob could not move some files to their final path; the job keeps its state",
  CONFLICT: "the job changed concurrently; retry the call",
  GRAPHQL_PARSE_FAILED: "the document is not valid GraphQL syntax",
  QUERY_TOO_COMPLEX: "the document exceeds a depth, cost, alias, directive or token limit",
  REQUEST_ENTITY_TOO_LARGE: "the request body is larger than 1 MiB",
  BAD_REQUEST: "the HTTP request is not a GraphQL request haul accepts (malformed JSON parameters, a batch of operations)",
  OPERATION_RESOLUTION_FAILURE: "operationName names no operation of the document, or the document has several and none is named",
  TOO_MANY_JOBS: "the user has too many unfinished jobs (60 by default, BITS MaxJobsPerUser)",
  GRAPHQL_VALIDATION_FAILED: "the document does not match the schema (unknown field, wrong argument, ...)",
  INTERNAL: "an unexpected error; the server log has the details under extensions.correlationId",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export function apiError(code: ErrorCode | string, message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code } });
}

/** Converts errors we know into API errors; returns null for anything unexpected. */
export function toApiError(err: unknown): GraphQLError | null {
  if (err instanceof GraphQLError && err.extensions?.code) return err;
  if (err instanceof DomainError) return apiError(err.code, err.message);
  if (err instanceof ConflictError) return apiError("CONFLICT", err.message);
  return null;
}

/**
 * A code for an error raised by graphql-js or yoga themselves (no resolver involved): parse,
 * validation, or a variable that does not fit its type. Used by both transports.
 */
export function withRequestErrorCode(error: GraphQLError): GraphQLError {
  if (error.extensions?.code) return error;
  const code = error.message.startsWith("Syntax Error")
    ? "GRAPHQL_PARSE_FAILED"
    : /^Variable "\$|^Argument "|got invalid value|Expected value of type/.test(error.message)
      ? "BAD_USER_INPUT"
      : "GRAPHQL_VALIDATION_FAILED";
  return new GraphQLError(error.message, { nodes: error.nodes, source: error.source, positions: error.positions, path: error.path, extensions: { ...error.extensions, code } });
}
