/**
 * The job state machine: a pure function `decide(job, event, now)` that says
 * what a call or a worker/scheduler event does to a job. It decides only; the
 * caller (src/jobs/commands.ts) saves the patch with compare-and-set on
 * `from`, then carries out the effects and publishes. No I/O, no clock: time
 * comes in as `now`. Semantics follow Microsoft BITS (design/bits-model.md §1,
 * §2, §4) for download jobs unless noted.
 *
 * THE TABLE (download jobs; every final column refuses everything)
 *
 *   event \ from         QUEUED  CONNECT TRANSF  SUSP    ERROR   T_ERROR TRANSFD | ACK  CANC
 *   SUSPEND              SUSP    SUSP*   SUSP*   =       SUSP    SUSP    SUSP    | x    x
 *   RESUME          [1]  =       =       =       QUEUED+ QUEUED+ QUEUED+ QUEUED+ | x    x
 *   COMPLETE        [2]  ACK     ACK*    ACK*    ACK     ACK     ACK     ACK     | x    x
 *   CANCEL               CANC    CANC*   CANC*   CANC    CANC    CANC    CANC    | x    x
 *   ADD_FILES       [3]  =       =       =       =       =       =       =       | x    x
 *   UPDATE               =       =       =       =       =       =       =       | x    x
 *   TAKE_OWNERSHIP       =       =       =       =       =       =       =       | x    x
 *   START                CONNECT x       x       x       x       x       x       | x    x
 *   CONNECTED            x       TRANSF  x       x       x       x       x       | x    x
 *   PROGRESS             x       =       =       x       x       x       x       | x    x
 *   ALL_FILES_DONE       x       TRANSFD TRANSFD x       x       x       x       | x    x
 *   YIELD                x       QUEUED+ QUEUED+ x       x       x       x       | x    x
 *   TRANSIENT_FAILURE[4] T_ERR|E T_ERR|E T_ERR|E x       x       x       x       | x    x
 *   FATAL_FAILURE        ERROR   ERROR   ERROR   x       x       x       x       | x    x
 *   RETRY_DUE       [5]  x       x       x       x       x       QUEUED+ x       | x    x
 *   NO_PROGRESS_TIMEOUT  x       x       x       x       x       ERROR   x       | x    x
 *                   [6]
 *   MAX_DOWNLOAD_TIME_   x       ERROR*  ERROR*  x       x       x       x       | x    x
 *     EXCEEDED      [7]
 *   INACTIVITY_TIMEOUT   CANC    CANC*   CANC*   CANC    CANC    CANC    CANC    | x    x
 *
 *   =  legal, state unchanged        x  refused INVALID_STATE
 *   *  effect STOP_TRANSFER (a transfer is running in CONNECTING/TRANSFERRING)
 *      Every transition from CONNECTING/TRANSFERRING to any other state also
 *      banks the stint in activeSeconds ([7]).
 *   +  effect WAKE_WORKER (the job became runnable)
 *   COMPLETE also has effect COMMIT_FILES; CANCEL and INACTIVITY_TIMEOUT have
 *   DELETE_TEMP_FILES. Effects are always in the order STOP_TRANSFER first.
 *
 *   [1] RESUME: refused EMPTY when the job has no files (checked right after
 *       the final-state check). From TRANSFERRED it re-queues only when files
 *       were added after the transfer (filesTransferred < filesTotal), else it
 *       is unchanged. Patch: retryAt null, activeSeconds 0 and activeSince
 *       null (Resume restarts MaximumDownloadTime, [7]); noProgressSince
 *       null, EXCEPT from TRANSIENT_ERROR, which keeps the no-progress
 *       clock: a Resume there is "retry now", not progress, and a client
 *       that resumes in a loop must not keep a dead server alive past
 *       NoProgressTimeout. From SUSPENDED
 *       and ERROR the clock restarts: time spent suspended is the user's
 *       choice, and leaving ERROR means the app fixed the cause. The last
 *       error is kept (GetError works until transferring starts again).
 *   [2] COMPLETE: warning PARTIAL_COMPLETE when filesTransferred < filesTotal
 *       (BG_S_PARTIAL_COMPLETE: transferred files are kept, the rest
 *       dropped). UPLOAD and UPLOAD_REPLY jobs: legal only in TRANSFERRED,
 *       refused INVALID_STATE elsewhere.
 *   [3] ADD_FILES: BAD_USER_INPUT when count is not a positive integer;
 *       TOO_MANY_FILES when filesTotal + count exceeds maxFilesPerJob (or 1
 *       for UPLOAD / UPLOAD_REPLY jobs, which hold exactly one file).
 *   [4] TRANSIENT_FAILURE: errorCount + 1, error set, the no-progress clock
 *       starts if it is not running (noProgressSince = existing ?? now).
 *       delay = max(minimumRetryDelay, retryAfterSeconds ?? 0). Straight to
 *       ERROR (retryAt null) when noProgressTimeout is 0, when the delay
 *       exceeds noProgressTimeout (the job keeps this error), or when the
 *       clock has already run for noProgressTimeout (error NO_PROGRESS quoting
 *       this error, as [6]); otherwise TRANSIENT_ERROR with retryAt = now +
 *       delay (never sooner than minimumRetryDelay).
 *   [5] RETRY_DUE: only when retryAt is set and now >= retryAt; otherwise
 *       refused INVALID_STATE saying when the retry is due.
 *   [6] NO_PROGRESS_TIMEOUT: only when noProgressSince is set and
 *       now - noProgressSince >= noProgressTimeout; the error becomes
 *       GENERAL_QUEUE_MANAGER / NO_PROGRESS, quoting the last error. errorCount
 *       is unchanged (the failed attempts were already counted).
 *   [7] MAX_DOWNLOAD_TIME_EXCEEDED: only when activeTime(job, now) >=
 *       maximumDownloadTime (otherwise refused, so a stale timer cannot fail
 *       a job); errorCount + 1, error GENERAL_QUEUE_MANAGER /
 *       MAXDOWNLOAD_TIMEOUT. STOP_TRANSFER because the scheduler, not the
 *       transfer, may be the one reporting it.
 *       The clock (BITS MaximumDownloadTime) counts ONLY time spent in
 *       CONNECTING or TRANSFERRING since the last Resume; time in QUEUED,
 *       TRANSIENT_ERROR, SUSPENDED, ERROR or TRANSFERRED is not counted. Two
 *       fields keep it:
 *         activeSeconds  whole seconds banked from finished stints;
 *         activeSince    when the current stint began (null when not in
 *                        CONNECTING/TRANSFERRING).
 *       activeTime(job, now) = activeSeconds + max(0, now - activeSince)
 *       (the current stint in fractional seconds; 0 when activeSince is null).
 *       - START (entering CONNECTING) always sets activeSince = now.
 *         CONNECTED (CONNECTING -> TRANSFERRING) keeps it: one stint.
 *       - Every transition that leaves CONNECTING/TRANSFERRING for a
 *         non-running state (YIELD, TRANSIENT_FAILURE, FATAL_FAILURE,
 *         ALL_FILES_DONE, MAX_DOWNLOAD_TIME_EXCEEDED, SUSPEND, COMPLETE,
 *         CANCEL, INACTIVITY_TIMEOUT) sets activeSeconds = activeSeconds +
 *         floor(max(0, now - activeSince)) and activeSince null. This is done
 *         in one place (go()), so no case can forget it. Rounding: each
 *         stint is rounded DOWN to whole seconds (the column is an integer),
 *         so the bank can undercount by under 1 s per stint but never
 *         overcounts: the limit never fires early. A negative stint (clock
 *         skew) counts 0.
 *       - RESUME (every transition it makes to QUEUED) sets activeSeconds 0
 *         and activeSince null.
 *       - ALL_FILES_DONE banks the stint like any other exit and keeps the
 *         total (a later Resume after AddFile resets it).
 *
 * Other patch rules:
 * - Every transition patch carries `state`.
 * - retryAt is non-null only in TRANSIENT_ERROR: every transition out of
 *   TRANSIENT_ERROR clears it.
 * - activeSince is non-null only in CONNECTING/TRANSFERRING: START sets it,
 *   every transition out of those states banks the stint and clears it
 *   ([7]). activeSeconds changes only by that banking and by RESUME (to 0).
 * - CONNECTED clears error (GetError works only until transferring starts
 *   again) but NOT noProgressSince: in BITS the no-progress clock resets only
 *   on progress. If connecting reset it, a server that accepts the
 *   connection and then fails before any byte arrives would be retried
 *   forever and NoProgressTimeout would never fire. So only PROGRESS (bytes
 *   moved; the worker must report it before a failure if bytes moved) and
 *   ALL_FILES_DONE clear noProgressSince. ALL_FILES_DONE sets
 *   transferCompletedAt = now and clears error, retryAt, noProgressSince
 *   (and banks the stint, [7]). FATAL_FAILURE: errorCount + 1, error set,
 *   retryAt null.
 */
import type { RefusalCode } from "./errors.js";

export const JOB_STATES = [
  "QUEUED",
  "CONNECTING",
  "TRANSFERRING",
  "SUSPENDED",
  "ERROR",
  "TRANSIENT_ERROR",
  "TRANSFERRED",
  "ACKNOWLEDGED",
  "CANCELLED",
] as const;
export type JobState = (typeof JOB_STATES)[number];
export type JobType = "DOWNLOAD" | "UPLOAD" | "UPLOAD_REPLY";
export type ErrorContext =
  | "NONE"
  | "UNKNOWN"
  | "GENERAL_QUEUE_MANAGER"
  | "QUEUE_MANAGER_NOTIFICATION"
  | "LOCAL_FILE"
  | "REMOTE_FILE"
  | "GENERAL_TRANSPORT"
  | "REMOTE_APPLICATION"
  | "SERVER_CERTIFICATE_CALLBACK";

/** Never left; every call on them is refused (BITS "final" group). */
export const FINAL_STATES: ReadonlySet<JobState> = new Set<JobState>(["ACKNOWLEDGED", "CANCELLED"]);
/** BITS "action" group: the job is, or will be, worked on without a client call. */
export const ACTION_STATES: ReadonlySet<JobState> = new Set<JobState>([
  "QUEUED",
  "CONNECTING",
  "TRANSFERRING",
  "TRANSIENT_ERROR",
]);
/** A transfer is in flight: leaving these by a client call must stop it. */
const RUNNING_STATES: ReadonlySet<JobState> = new Set<JobState>(["CONNECTING", "TRANSFERRING"]);

export function isFinal(s: JobState): boolean {
  return FINAL_STATES.has(s);
}

/** BITS defaults and limits (bits-model.md §2). Times in seconds. */
export const DEFAULTS = {
  priority: "NORMAL",
  minimumRetryDelaySeconds: 600,
  retryDelayFloorSeconds: 5, // smaller values are clamped up to the floor (BITS); the floor itself is configurable by the caller
  noProgressTimeoutSeconds: 1_209_600, // 14 days
  maximumDownloadTimeSeconds: 7_776_000, // 90 days
  maxFilesPerJob: 200,
  displayNameMaxLength: 256,
  descriptionMaxLength: 1024,
  remoteUrlMaxLength: 2200,
} as const;

export interface JobErrorInfo {
  context: ErrorContext;
  code: string;
  message: string;
  fileId: string | null;
  httpStatus: number | null;
}

/** What the machine needs to know about a job (a snapshot read under the row lock). */
export interface JobSnapshot {
  state: JobState;
  type: JobType;
  filesTotal: number; // files in the job
  filesTransferred: number; // files fully transferred (and verified)
  errorCount: number;
  minimumRetryDelay: number; // seconds
  noProgressTimeout: number; // seconds; 0 = every transient error is fatal
  noProgressSince: Date | null; // when the no-progress clock started (first transient error since the last progress); null = not running
  retryAt: Date | null; // when a TRANSIENT_ERROR job may be retried
  activeSince: Date | null; // when the current stint in CONNECTING/TRANSFERRING began; null when not in those states (header note [7])
  activeSeconds: number; // whole seconds spent in CONNECTING/TRANSFERRING since the last Resume, not counting the current stint
  maximumDownloadTime: number; // seconds, compared with activeTime()
  /** The last error, if known. Only NO_PROGRESS_TIMEOUT reads it (to quote it); omitted = unknown. */
  error?: JobErrorInfo | null;
}

/** Calls from clients (API) and events from the worker/scheduler. */
export type JobEvent =
  | { type: "SUSPEND" }
  | { type: "RESUME" }
  | { type: "COMPLETE" }
  | { type: "CANCEL" }
  | { type: "ADD_FILES"; count: number; maxFilesPerJob: number }
  | { type: "UPDATE" } // any Set* property call
  | { type: "TAKE_OWNERSHIP" }
  // worker / scheduler:
  | { type: "START" } // QUEUED -> CONNECTING (claimed)
  | { type: "CONNECTED" } // CONNECTING -> TRANSFERRING
  | { type: "PROGRESS" } // bytes moved: resets the no-progress clock; only in CONNECTING/TRANSFERRING
  | { type: "ALL_FILES_DONE" } // CONNECTING|TRANSFERRING -> TRANSFERRED
  | { type: "YIELD" } // time slice over / pre-empted / shutdown: CONNECTING|TRANSFERRING -> QUEUED
  | { type: "TRANSIENT_FAILURE"; error: JobErrorInfo; retryAfterSeconds?: number } // from QUEUED|CONNECTING|TRANSFERRING
  | { type: "FATAL_FAILURE"; error: JobErrorInfo } // from QUEUED|CONNECTING|TRANSFERRING
  | { type: "RETRY_DUE" } // TRANSIENT_ERROR -> QUEUED when now >= retryAt
  | { type: "NO_PROGRESS_TIMEOUT" } // TRANSIENT_ERROR -> ERROR when now - noProgressSince >= noProgressTimeout
  | { type: "MAX_DOWNLOAD_TIME_EXCEEDED" } // CONNECTING|TRANSFERRING -> ERROR (MAXDOWNLOAD_TIMEOUT)
  | { type: "INACTIVITY_TIMEOUT" }; // any non-final -> CANCELLED

export type JobEventType = JobEvent["type"];

// A record keyed by every event type, so adding an event without listing it here fails to compile.
const EVENT_TYPE_KEYS = {
  SUSPEND: true,
  RESUME: true,
  COMPLETE: true,
  CANCEL: true,
  ADD_FILES: true,
  UPDATE: true,
  TAKE_OWNERSHIP: true,
  START: true,
  CONNECTED: true,
  PROGRESS: true,
  ALL_FILES_DONE: true,
  YIELD: true,
  TRANSIENT_FAILURE: true,
  FATAL_FAILURE: true,
  RETRY_DUE: true,
  NO_PROGRESS_TIMEOUT: true,
  MAX_DOWNLOAD_TIME_EXCEEDED: true,
  INACTIVITY_TIMEOUT: true,
} satisfies Record<JobEventType, true>;
export const JOB_EVENT_TYPES: readonly JobEventType[] = Object.freeze(Object.keys(EVENT_TYPE_KEYS) as JobEventType[]);

export type Effect =
  | { type: "STOP_TRANSFER" } // a running transfer of this job must stop (suspend/cancel/complete while CONNECTING/TRANSFERRING)
  | { type: "DELETE_TEMP_FILES" } // cancel: remove temporary files
  | { type: "COMMIT_FILES" } // complete: rename transferred temp files to final paths, drop partial ones
  | { type: "WAKE_WORKER" }; // the job became runnable (entered QUEUED)

/** Field changes to write to the job row together with the state. Only keys present change. */
export interface JobPatch {
  state?: JobState;
  errorCount?: number;
  error?: JobErrorInfo | null; // null clears the last error
  retryAt?: Date | null;
  noProgressSince?: Date | null;
  activeSince?: Date | null;
  activeSeconds?: number; // always a non-negative integer (an INTEGER column)
  transferCompletedAt?: Date;
}

export type Decision =
  | { kind: "transition"; from: JobState; to: JobState; patch: JobPatch; effects: Effect[]; warning?: "PARTIAL_COMPLETE" }
  | { kind: "unchanged"; state: JobState; patch: JobPatch; effects: Effect[] }
  | { kind: "refused"; code: RefusalCode; message: string };

/** Clamp a requested retry delay to the floor (BITS clamps, it does not refuse). Negative input is the caller's validation problem. */
export function clampRetryDelay(requested: number, floor: number = DEFAULTS.retryDelayFloorSeconds): number {
  return Math.max(requested, floor);
}

/** The error of a job that made no progress for its noProgressTimeout: it quotes the last error. */
function noProgressError(elapsed: number, last: JobErrorInfo | null): JobErrorInfo {
  return {
    context: "GENERAL_QUEUE_MANAGER",
    code: "NO_PROGRESS",
    message: `no progress for ${Math.floor(elapsed)} s; the last error was: ${last ? last.message : "unknown"}`,
    fileId: last ? last.fileId : null,
    httpStatus: last ? last.httpStatus : null,
  };
}

/**
 * Seconds counted toward maximumDownloadTime (BITS MaximumDownloadTime): the banked
 * activeSeconds plus the current stint in CONNECTING/TRANSFERRING, if one is running
 * (fractional; a stint that seems to start in the future counts 0). Header note [7].
 */
export function activeTime(job: Pick<JobSnapshot, "activeSeconds" | "activeSince">, now: Date): number {
  return job.activeSeconds + (job.activeSince === null ? 0 : Math.max(0, elapsedSeconds(job.activeSince, now)));
}

export function decide(job: JobSnapshot, event: JobEvent, now: Date): Decision {
  const from = job.state;
  if (isFinal(from)) {
    return refuse("INVALID_STATE", `the job is ${from}: it is finished and read-only; create a new job instead`);
  }
  const running = RUNNING_STATES.has(from);
  const stop: Effect[] = running ? [{ type: "STOP_TRANSFER" }] : [];

  switch (event.type) {
    case "SUSPEND":
      return from === "SUSPENDED" ? unchanged(job) : go(job, now, "SUSPENDED", {}, stop);

    case "RESUME": {
      if (job.filesTotal === 0) {
        return refuse("EMPTY", "the job has no files: add at least one file before resuming");
      }
      const restart: JobPatch = { retryAt: null, activeSince: null, activeSeconds: 0, noProgressSince: null };
      switch (from) {
        case "SUSPENDED":
        case "ERROR":
          return go(job, now, "QUEUED", restart, [WAKE]);
        case "TRANSIENT_ERROR": // retry now, but keep the no-progress clock (header note [1])
          return go(job, now, "QUEUED", { retryAt: null, activeSince: null, activeSeconds: 0 }, [WAKE]);
        case "TRANSFERRED":
          return job.filesTransferred < job.filesTotal ? go(job, now, "QUEUED", restart, [WAKE]) : unchanged(job);
        default: // QUEUED, CONNECTING, TRANSFERRING: already in the action group
          return unchanged(job);
      }
    }

    case "COMPLETE": {
      if (job.type !== "DOWNLOAD" && from !== "TRANSFERRED") {
        return refuse(
          "INVALID_STATE",
          `${job.type} jobs can be completed only once TRANSFERRED (it is ${from}); wait for the transfer to finish, or cancel the job`,
        );
      }
      const partial = job.filesTransferred < job.filesTotal;
      return go(job, now, "ACKNOWLEDGED", {}, [...stop, { type: "COMMIT_FILES" }], partial ? "PARTIAL_COMPLETE" : undefined);
    }

    case "CANCEL":
    case "INACTIVITY_TIMEOUT":
      return go(job, now, "CANCELLED", {}, [...stop, { type: "DELETE_TEMP_FILES" }]);

    case "ADD_FILES": {
      if (!Number.isInteger(event.count) || event.count <= 0) {
        return refuse("BAD_USER_INPUT", `add at least one file (got count ${event.count})`);
      }
      const total = job.filesTotal + event.count;
      if (job.type !== "DOWNLOAD" && total > 1) {
        return refuse("TOO_MANY_FILES", `${job.type} jobs hold exactly one file; create another job for each further file`);
      }
      if (total > event.maxFilesPerJob) {
        return refuse(
          "TOO_MANY_FILES",
          `the job would hold ${total} files, more than the limit of ${event.maxFilesPerJob}; put the rest in another job`,
        );
      }
      return unchanged(job);
    }

    case "UPDATE":
    case "TAKE_OWNERSHIP":
      return unchanged(job);

    case "START":
      if (from !== "QUEUED") return notLegal(event.type, from, "QUEUED");
      return go(job, now, "CONNECTING", { activeSince: now }); // a stint starts (header note [7])

    case "CONNECTED":
      if (from !== "CONNECTING") return notLegal(event.type, from, "CONNECTING");
      // Not noProgressSince: connecting is not progress (header note on CONNECTED).
      return go(job, now, "TRANSFERRING", { error: null });

    case "PROGRESS":
      if (!running) return notLegal(event.type, from, "CONNECTING or TRANSFERRING");
      return unchanged(job, { noProgressSince: null });

    case "ALL_FILES_DONE":
      if (!running) return notLegal(event.type, from, "CONNECTING or TRANSFERRING");
      return go(job, now, "TRANSFERRED", {
        transferCompletedAt: now,
        error: null,
        retryAt: null,
        noProgressSince: null,
      }); // go() banks the stint (header note [7])

    case "YIELD":
      if (!running) return notLegal(event.type, from, "CONNECTING or TRANSFERRING");
      return go(job, now, "QUEUED", {}, [WAKE]);

    case "TRANSIENT_FAILURE": {
      if (from !== "QUEUED" && !running) return notLegal(event.type, from, "QUEUED, CONNECTING or TRANSFERRING");
      const since = job.noProgressSince ?? now;
      const delay = Math.max(job.minimumRetryDelay, positiveOrZero(event.retryAfterSeconds));
      const patch: JobPatch = { errorCount: job.errorCount + 1, error: event.error, noProgressSince: since };
      // Fatal at once when every error is fatal (timeout 0) or the retry would come after the
      // timeout: the job keeps this error. Fatal because the no-progress clock ran out: NO_PROGRESS,
      // quoting this error, the same code the sweep gives (NO_PROGRESS_TIMEOUT below).
      if (job.noProgressTimeout === 0 || delay > job.noProgressTimeout) return go(job, now, "ERROR", { ...patch, retryAt: null });
      const elapsed = elapsedSeconds(since, now);
      if (elapsed >= job.noProgressTimeout) {
        return go(job, now, "ERROR", { ...patch, retryAt: null, error: noProgressError(elapsed, event.error) });
      }
      return go(job, now, "TRANSIENT_ERROR", { ...patch, retryAt: addSeconds(now, delay) });
    }

    case "FATAL_FAILURE":
      if (from !== "QUEUED" && !running) return notLegal(event.type, from, "QUEUED, CONNECTING or TRANSFERRING");
      return go(job, now, "ERROR", { errorCount: job.errorCount + 1, error: event.error, retryAt: null });

    case "RETRY_DUE":
      if (from !== "TRANSIENT_ERROR") return notLegal(event.type, from, "TRANSIENT_ERROR");
      if (job.retryAt === null) return refuse("INVALID_STATE", "retry not due: no retry is scheduled for this job");
      if (now.getTime() < job.retryAt.getTime()) {
        const wait = Math.ceil((job.retryAt.getTime() - now.getTime()) / 1000);
        return refuse("INVALID_STATE", `retry not due until ${job.retryAt.toISOString()} (in ${wait} s)`);
      }
      return go(job, now, "QUEUED", {}, [WAKE]);

    case "NO_PROGRESS_TIMEOUT": {
      if (from !== "TRANSIENT_ERROR") return notLegal(event.type, from, "TRANSIENT_ERROR");
      const since = job.noProgressSince;
      if (since === null) return refuse("INVALID_STATE", "no-progress timeout not reached: the no-progress clock is not running");
      const elapsed = elapsedSeconds(since, now);
      if (elapsed < job.noProgressTimeout) {
        const due = addSeconds(since, job.noProgressTimeout).toISOString();
        return refuse("INVALID_STATE", `no-progress timeout not reached until ${due}`);
      }
      return go(job, now, "ERROR", { error: noProgressError(elapsed, job.error ?? null) });
    }

    case "MAX_DOWNLOAD_TIME_EXCEEDED": {
      if (!running) return notLegal(event.type, from, "CONNECTING or TRANSFERRING");
      const active = activeTime(job, now);
      if (active < job.maximumDownloadTime) {
        const counted = `${Math.floor(active)} s of ${job.maximumDownloadTime} s counted`;
        const due =
          job.activeSince === null
            ? `${counted} and the clock is not running`
            : `${counted}; not until ${addSeconds(now, job.maximumDownloadTime - active).toISOString()} if the job keeps running`;
        return refuse("INVALID_STATE", `maximum download time not exceeded: ${due}`);
      }
      return go(
        job,
        now,
        "ERROR",
        {
          errorCount: job.errorCount + 1,
          error: {
            context: "GENERAL_QUEUE_MANAGER",
            code: "MAXDOWNLOAD_TIMEOUT",
            message: `the job did not finish within its maximum download time of ${job.maximumDownloadTime} s; raise it and resume, or complete to keep the finished files`,
            fileId: null,
            httpStatus: null,
          },
        },
        stop,
      );
    }

    default:
      return assertNever(event);
  }
}

const WAKE: Effect = { type: "WAKE_WORKER" };

function go(
  job: JobSnapshot,
  now: Date,
  to: JobState,
  patch: JobPatch,
  effects: Effect[] = [],
  warning?: "PARTIAL_COMPLETE",
): Decision {
  // retryAt is only meaningful in TRANSIENT_ERROR: clear it on the way out.
  const leaving: JobPatch = job.state === "TRANSIENT_ERROR" ? { retryAt: null } : {};
  // Leaving CONNECTING/TRANSFERRING ends a stint: bank it in whole seconds, rounded down
  // (header note [7]). Applied last so that no case can forget or override it.
  const endsStint = RUNNING_STATES.has(job.state) && !RUNNING_STATES.has(to);
  const stintSeconds = Math.floor(activeTime({ activeSeconds: 0, activeSince: job.activeSince }, now));
  const stint: JobPatch = endsStint ? { activeSeconds: job.activeSeconds + stintSeconds, activeSince: null } : {};
  const decision: Extract<Decision, { kind: "transition" }> = {
    kind: "transition",
    from: job.state,
    to,
    patch: { state: to, ...leaving, ...patch, ...stint },
    effects: effects.map((e) => ({ ...e })),
  };
  if (warning !== undefined) decision.warning = warning;
  return decision;
}

function unchanged(job: JobSnapshot, patch: JobPatch = {}): Decision {
  return { kind: "unchanged", state: job.state, patch, effects: [] };
}

function refuse(code: RefusalCode, message: string): Decision {
  return { kind: "refused", code, message };
}

function notLegal(event: JobEventType, from: JobState, legalIn: string): Decision {
  return refuse("INVALID_STATE", `${event} is not legal while the job is ${from}; it is legal only in ${legalIn}`);
}

function elapsedSeconds(since: Date, now: Date): number {
  return (now.getTime() - since.getTime()) / 1000;
}

function addSeconds(d: Date, seconds: number): Date {
  return new Date(d.getTime() + seconds * 1000);
}

/** A server's Retry-After can be missing or nonsense; only a positive finite number counts. */
function positiveOrZero(n: number | undefined): number {
  return n !== undefined && Number.isFinite(n) && n > 0 ? n : 0;
}

function assertNever(x: never): never {
  throw new Error(`unhandled job event: ${JSON.stringify(x)}`);
}
