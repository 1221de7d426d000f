/**
 * Domain refusal codes: the stable reasons the state machine (and the domain
 * validators) refuse a call. They travel unchanged to the API as
 * `extensions.code` (see design/api.md), so never rename one.
 *
 *   INVALID_STATE   the call is not legal in the job's current state
 *                   (BG_E_INVALID_STATE 0x80200002); also "not due yet"
 *                   for the scheduler's timer events
 *   EMPTY           Resume of a job with no files (BG_E_EMPTY 0x80200003)
 *   TOO_MANY_FILES  more files than the job may hold: a second file on an
 *                   upload job (BG_E_TOO_MANY_FILES 0x8020001C) or past the
 *                   per-job limit (BG_E_TOO_MANY_FILES_IN_JOB 0x80200051)
 *   BAD_USER_INPUT  the arguments themselves are wrong (E_INVALIDARG)
 */
export type RefusalCode = "INVALID_STATE" | "EMPTY" | "TOO_MANY_FILES" | "BAD_USER_INPUT";

/**
 * A refused domain call. `code` is a RefusalCode, or another stable code
 * from api.md's list (e.g. NOT_FOUND) when raised outside the state machine.
 * `message` tells the user what to do.
 */
export class DomainError extends Error {
  override readonly name = "DomainError";

  constructor(
    readonly code: RefusalCode | string,
    message: string,
  ) {
    super(message);
  }
}
