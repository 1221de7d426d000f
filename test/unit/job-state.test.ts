/**
 * The job state machine, table-driven over every (state x event) pair, for
 * every job type, plus focused tests for the patches, the retry /
 * no-progress / max-download arithmetic and the defaults.
 *
 * The expected tables below are written out by hand from bits-model.md §1
 * and the header of src/domain/job-state.ts; they are never derived from the
 * implementation. Cell notation:
 *   "="                 legal, state unchanged, no effects
 *   "x"                 refused INVALID_STATE
 *   "!CODE"             refused with another code
 *   "STATE +a+b ~w"     transition to STATE with effects a, b (in that order)
 *                       and warning w; effect names: stop = STOP_TRANSFER,
 *                       delete = DELETE_TEMP_FILES, commit = COMMIT_FILES,
 *                       wake = WAKE_WORKER; ~partial = PARTIAL_COMPLETE
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ACTION_STATES,
  DEFAULTS,
  FINAL_STATES,
  JOB_EVENT_TYPES,
  JOB_STATES,
  activeTime,
  clampRetryDelay,
  decide,
  isFinal,
  type Decision,
  type JobErrorInfo,
  type JobEvent,
  type JobEventType,
  type JobPatch,
  type JobSnapshot,
  type JobState,
  type JobType,
} from "../../src/domain/job-state.js";
import { DomainError } from "../../src/domain/errors.js";

const NOW = new Date("2025-03-01T12:00:00.000Z");
const DAY = 86_400;

function at(offsetSeconds: number, base: Date = NOW): Date {
  return new Date(base.getTime() + offsetSeconds * 1000);
}

const NET_ERROR: JobErrorInfo = {
  context: "GENERAL_TRANSPORT",
  code: "HTTP_503",
  message: "server unavailable",
  fileId: "file-1",
  httpStatus: 503,
};

const DENIED: JobErrorInfo = {
  context: "REMOTE_FILE",
  code: "HTTP_404",
  message: "not found",
  fileId: "file-2",
  httpStatus: 404,
};

/** One event of each type, with arguments under which its guards pass on the grid snapshots. */
const EVENTS: Record<JobEventType, JobEvent> = {
  SUSPEND: { type: "SUSPEND" },
  RESUME: { type: "RESUME" },
  COMPLETE: { type: "COMPLETE" },
  CANCEL: { type: "CANCEL" },
  ADD_FILES: { type: "ADD_FILES", count: 1, maxFilesPerJob: 200 },
  UPDATE: { type: "UPDATE" },
  TAKE_OWNERSHIP: { type: "TAKE_OWNERSHIP" },
  START: { type: "START" },
  CONNECTED: { type: "CONNECTED" },
  PROGRESS: { type: "PROGRESS" },
  ALL_FILES_DONE: { type: "ALL_FILES_DONE" },
  YIELD: { type: "YIELD" },
  TRANSIENT_FAILURE: { type: "TRANSIENT_FAILURE", error: NET_ERROR },
  FATAL_FAILURE: { type: "FATAL_FAILURE", error: DENIED },
  RETRY_DUE: { type: "RETRY_DUE" },
  NO_PROGRESS_TIMEOUT: { type: "NO_PROGRESS_TIMEOUT" },
  MAX_DOWNLOAD_TIME_EXCEEDED: { type: "MAX_DOWNLOAD_TIME_EXCEEDED" },
  INACTIVITY_TIMEOUT: { type: "INACTIVITY_TIMEOUT" },
};

/**
 * The grid snapshot for a state: a job of `type` with its time guards met
 * (retry due, no-progress and max-download clocks expired), and every file
 * transferred only in TRANSFERRED (elsewhere 1 of 3, or 0 of 1 for uploads).
 * Every job has 7 s banked from earlier stints; a stint runs (since 91 days
 * and half a second ago) only in CONNECTING/TRANSFERRING.
 */
function gridJob(state: JobState, type: JobType): JobSnapshot {
  const upload = type !== "DOWNLOAD";
  const running = state === "CONNECTING" || state === "TRANSFERRING";
  return {
    state,
    type,
    filesTotal: upload ? 1 : 3,
    filesTransferred: state === "TRANSFERRED" ? (upload ? 1 : 3) : upload ? 0 : 1,
    errorCount: 1,
    minimumRetryDelay: 600,
    noProgressTimeout: 14 * DAY,
    noProgressSince: state === "TRANSIENT_ERROR" ? at(-15 * DAY) : null,
    retryAt: state === "TRANSIENT_ERROR" ? at(-1) : null,
    activeSince: running ? at(-91 * DAY - 0.5) : null,
    activeSeconds: 7,
    maximumDownloadTime: 90 * DAY,
    error: state === "TRANSIENT_ERROR" || state === "ERROR" ? NET_ERROR : null,
  };
}

type Row = Record<JobState, string>;

// prettier-ignore
const DOWNLOAD_TABLE: Record<JobEventType, Row> = {
  SUSPEND: {
    QUEUED: "SUSPENDED", CONNECTING: "SUSPENDED +stop", TRANSFERRING: "SUSPENDED +stop",
    SUSPENDED: "=", ERROR: "SUSPENDED", TRANSIENT_ERROR: "SUSPENDED", TRANSFERRED: "SUSPENDED",
    ACKNOWLEDGED: "x", CANCELLED: "x",
  },
  RESUME: {
    QUEUED: "=", CONNECTING: "=", TRANSFERRING: "=",
    SUSPENDED: "QUEUED +wake", ERROR: "QUEUED +wake", TRANSIENT_ERROR: "QUEUED +wake", TRANSFERRED: "=",
    ACKNOWLEDGED: "x", CANCELLED: "x",
  },
  COMPLETE: {
    QUEUED: "ACKNOWLEDGED +commit ~partial",
    CONNECTING: "ACKNOWLEDGED +stop+commit ~partial",
    TRANSFERRING: "ACKNOWLEDGED +stop+commit ~partial",
    SUSPENDED: "ACKNOWLEDGED +commit ~partial",
    ERROR: "ACKNOWLEDGED +commit ~partial",
    TRANSIENT_ERROR: "ACKNOWLEDGED +commit ~partial",
    TRANSFERRED: "ACKNOWLEDGED +commit",
    ACKNOWLEDGED: "x", CANCELLED: "x",
  },
  CANCEL: {
    QUEUED: "CANCELLED +delete", CONNECTING: "CANCELLED +stop+delete", TRANSFERRING: "CANCELLED +stop+delete",
    SUSPENDED: "CANCELLED +delete", ERROR: "CANCELLED +delete", TRANSIENT_ERROR: "CANCELLED +delete",
    TRANSFERRED: "CANCELLED +delete",
    ACKNOWLEDGED: "x", CANCELLED: "x",
  },
  ADD_FILES: {
    QUEUED: "=", CONNECTING: "=", TRANSFERRING: "=", SUSPENDED: "=", ERROR: "=", TRANSIENT_ERROR: "=", TRANSFERRED: "=",
    ACKNOWLEDGED: "x", CANCELLED: "x",
  },
  UPDATE: {
    QUEUED: "=", CONNECTING: "=", TRANSFERRING: "=", SUSPENDED: "=", ERROR: "=", TRANSIENT_ERROR: "=", TRANSFERRED: "=",
    ACKNOWLEDGED: "x", CANCELLED: "x",
  },
  TAKE_OWNERSHIP: {
    QUEUED: "=", CONNECTING: "=", TRANSFERRING: "=", SUSPENDED: "=", ERROR: "=", TRANSIENT_ERROR: "=", TRANSFERRED: "=",
    ACKNOWLEDGED: "x", CANCELLED: "x",
  },
  START: {
    QUEUED: "CONNECTING", CONNECTING: "x", TRANSFERRING: "x", SUSPENDED: "x", ERROR: "x", TRANSIENT_ERROR: "x", TRANSFERRED: "x",
    ACKNOWLEDGED: "x", CANCELLED: "x",
  },
  CONNECTED: {
    QUEUED: "x", CONNECTING: "TRANSFERRING", TRANSFERRING: "x", SUSPENDED: "x", ERROR: "x", TRANSIENT_ERROR: "x", TRANSFERRED: "x",
    ACKNOWLEDGED: "x", CANCELLED: "x",
  },
  PROGRESS: {
    QUEUED: "x", CONNECTING: "=", TRANSFERRING: "=", SUSPENDED: "x", ERROR: "x", TRANSIENT_ERROR: "x", TRANSFERRED: "x",
    ACKNOWLEDGED: "x", CANCELLED: "x",
  },
  ALL_FILES_DONE: {
    QUEUED: "x", CONNECTING: "TRANSFERRED", TRANSFERRING: "TRANSFERRED",
    SUSPENDED: "x", ERROR: "x", TRANSIENT_ERROR: "x", TRANSFERRED: "x",
    ACKNOWLEDGED: "x", CANCELLED: "x",
  },
  YIELD: {
    QUEUED: "x", CONNECTING: "QUEUED +wake", TRANSFERRING: "QUEUED +wake",
    SUSPENDED: "x", ERROR: "x", TRANSIENT_ERROR: "x", TRANSFERRED: "x",
    ACKNOWLEDGED: "x", CANCELLED: "x",
  },
  TRANSIENT_FAILURE: {
    QUEUED: "TRANSIENT_ERROR", CONNECTING: "TRANSIENT_ERROR", TRANSFERRING: "TRANSIENT_ERROR",
    SUSPENDED: "x", ERROR: "x", TRANSIENT_ERROR: "x", TRANSFERRED: "x",
    ACKNOWLEDGED: "x", CANCELLED: "x",
  },
  FATAL_FAILURE: {
    QUEUED: "ERROR", CONNECTING: "ERROR", TRANSFERRING: "ERROR",
    SUSPENDED: "x", ERROR: "x", TRANSIENT_ERROR: "x", TRANSFERRED: "x",
    ACKNOWLEDGED: "x", CANCELLED: "x",
  },
  RETRY_DUE: {
    QUEUED: "x", CONNECTING: "x", TRANSFERRING: "x", SUSPENDED: "x", ERROR: "x",
    TRANSIENT_ERROR: "QUEUED +wake", TRANSFERRED: "x",
    ACKNOWLEDGED: "x", CANCELLED: "x",
  },
  NO_PROGRESS_TIMEOUT: {
    QUEUED: "x", CONNECTING: "x", TRANSFERRING: "x", SUSPENDED: "x", ERROR: "x",
    TRANSIENT_ERROR: "ERROR", TRANSFERRED: "x",
    ACKNOWLEDGED: "x", CANCELLED: "x",
  },
  MAX_DOWNLOAD_TIME_EXCEEDED: {
    QUEUED: "x", CONNECTING: "ERROR +stop", TRANSFERRING: "ERROR +stop",
    SUSPENDED: "x", ERROR: "x", TRANSIENT_ERROR: "x", TRANSFERRED: "x",
    ACKNOWLEDGED: "x", CANCELLED: "x",
  },
  INACTIVITY_TIMEOUT: {
    QUEUED: "CANCELLED +delete", CONNECTING: "CANCELLED +stop+delete", TRANSFERRING: "CANCELLED +stop+delete",
    SUSPENDED: "CANCELLED +delete", ERROR: "CANCELLED +delete", TRANSIENT_ERROR: "CANCELLED +delete",
    TRANSFERRED: "CANCELLED +delete",
    ACKNOWLEDGED: "x", CANCELLED: "x",
  },
};

/** UPLOAD and UPLOAD_REPLY differ only here: Complete needs TRANSFERRED, and the job holds one file (it already has it). */
// prettier-ignore
const UPLOAD_TABLE: Record<JobEventType, Row> = {
  ...DOWNLOAD_TABLE,
  COMPLETE: {
    QUEUED: "x", CONNECTING: "x", TRANSFERRING: "x", SUSPENDED: "x", ERROR: "x", TRANSIENT_ERROR: "x",
    TRANSFERRED: "ACKNOWLEDGED +commit",
    ACKNOWLEDGED: "x", CANCELLED: "x",
  },
  ADD_FILES: {
    QUEUED: "!TOO_MANY_FILES", CONNECTING: "!TOO_MANY_FILES", TRANSFERRING: "!TOO_MANY_FILES",
    SUSPENDED: "!TOO_MANY_FILES", ERROR: "!TOO_MANY_FILES", TRANSIENT_ERROR: "!TOO_MANY_FILES",
    TRANSFERRED: "!TOO_MANY_FILES",
    ACKNOWLEDGED: "x", CANCELLED: "x",
  },
};

const EFFECT_NAMES = {
  STOP_TRANSFER: "stop",
  DELETE_TEMP_FILES: "delete",
  COMMIT_FILES: "commit",
  WAKE_WORKER: "wake",
} as const;

const RUNNING: ReadonlySet<JobState> = new Set<JobState>(["CONNECTING", "TRANSFERRING"]);

/** Renders a decision in the cell notation, checking the invariants every decision must keep. Decisions are made at NOW. */
function cell(job: JobSnapshot, d: Decision): string {
  switch (d.kind) {
    case "refused":
      assert.ok(d.message.length > 0, "a refusal explains itself");
      return d.code === "INVALID_STATE" ? "x" : `!${d.code}`;
    case "unchanged":
      assert.equal(d.state, job.state);
      assert.deepEqual(d.effects, []);
      return "=";
    case "transition": {
      assert.equal(d.from, job.state);
      assert.equal(d.patch.state, d.to, "a transition patch carries the new state");
      if (d.to !== "TRANSIENT_ERROR") {
        assert.ok(!("retryAt" in d.patch) || d.patch.retryAt === null, "retryAt is set only in TRANSIENT_ERROR");
      }
      if (job.state === "TRANSIENT_ERROR") assert.equal(d.patch.retryAt, null, "leaving TRANSIENT_ERROR clears retryAt");
      // The max-download clock (header note [7]): a stint runs exactly while CONNECTING/TRANSFERRING.
      const activeSinceAfter = "activeSince" in d.patch ? d.patch.activeSince : job.activeSince;
      assert.equal(activeSinceAfter != null, RUNNING.has(d.to), "activeSince is set exactly in CONNECTING/TRANSFERRING");
      if (d.to === "CONNECTING") assert.deepEqual(d.patch.activeSince, NOW, "START starts a stint");
      if (RUNNING.has(job.state) && !RUNNING.has(d.to)) {
        assert.ok(job.activeSince);
        const stint = Math.floor((NOW.getTime() - job.activeSince.getTime()) / 1000);
        assert.equal(d.patch.activeSeconds, job.activeSeconds + stint, "leaving a running state banks the stint, rounded down");
      } else if ("activeSeconds" in d.patch) {
        assert.equal(d.patch.activeSeconds, 0, "only RESUME touches activeSeconds outside a stint, and resets it");
        assert.equal(d.to, "QUEUED");
      }
      if (d.patch.activeSeconds !== undefined) assert.ok(Number.isInteger(d.patch.activeSeconds), "activeSeconds is an integer column");
      const effects = d.effects.map((e) => EFFECT_NAMES[e.type]).join("+");
      const warning = d.warning === "PARTIAL_COMPLETE" ? " ~partial" : "";
      return `${d.to}${effects ? ` +${effects}` : ""}${warning}`;
    }
  }
}

const TYPES: Array<[JobType, Record<JobEventType, Row>]> = [
  ["DOWNLOAD", DOWNLOAD_TABLE],
  ["UPLOAD", UPLOAD_TABLE],
  ["UPLOAD_REPLY", UPLOAD_TABLE],
];

for (const [type, table] of TYPES) {
  for (const eventType of JOB_EVENT_TYPES) {
    test(`${type} ${eventType}: outcome in every state`, () => {
      const actual = {} as Row;
      for (const state of JOB_STATES) {
        const job = gridJob(state, type);
        actual[state] = cell(job, decide(job, EVENTS[eventType], NOW));
      }
      assert.deepEqual(actual, table[eventType]);
    });
  }
}

test("the tables cover every event type and state", () => {
  assert.deepEqual([...JOB_EVENT_TYPES].sort(), Object.keys(DOWNLOAD_TABLE).sort());
  assert.equal(JOB_EVENT_TYPES.length, 18);
  for (const row of Object.values(DOWNLOAD_TABLE)) assert.deepEqual(Object.keys(row).sort(), [...JOB_STATES].sort());
});

// ---------------------------------------------------------------- constants

test("states, groups and defaults are the BITS ones", () => {
  assert.deepEqual(JOB_STATES, [
    "QUEUED", "CONNECTING", "TRANSFERRING", "SUSPENDED", "ERROR",
    "TRANSIENT_ERROR", "TRANSFERRED", "ACKNOWLEDGED", "CANCELLED",
  ]);
  assert.deepEqual([...FINAL_STATES].sort(), ["ACKNOWLEDGED", "CANCELLED"]);
  assert.deepEqual([...ACTION_STATES].sort(), ["CONNECTING", "QUEUED", "TRANSFERRING", "TRANSIENT_ERROR"]);
  assert.deepEqual(
    JOB_STATES.filter((s) => isFinal(s)),
    ["ACKNOWLEDGED", "CANCELLED"],
  );
  assert.deepEqual(DEFAULTS, {
    priority: "NORMAL",
    minimumRetryDelaySeconds: 600,
    retryDelayFloorSeconds: 5,
    noProgressTimeoutSeconds: 1_209_600,
    maximumDownloadTimeSeconds: 7_776_000,
    maxFilesPerJob: 200,
    displayNameMaxLength: 256,
    descriptionMaxLength: 1024,
    remoteUrlMaxLength: 2200,
  });
  assert.equal(DEFAULTS.noProgressTimeoutSeconds, 14 * DAY);
  assert.equal(DEFAULTS.maximumDownloadTimeSeconds, 90 * DAY);
});

test("clampRetryDelay clamps up to the floor (5 s by default) and never refuses", () => {
  assert.equal(clampRetryDelay(0), 5);
  assert.equal(clampRetryDelay(4), 5);
  assert.equal(clampRetryDelay(5), 5);
  assert.equal(clampRetryDelay(6), 6);
  assert.equal(clampRetryDelay(600), 600);
  assert.equal(clampRetryDelay(30, 60), 60);
  assert.equal(clampRetryDelay(61, 60), 61);
  assert.equal(clampRetryDelay(0, 0), 0);
});

test("DomainError carries a stable code", () => {
  const e = new DomainError("EMPTY", "add a file");
  assert.ok(e instanceof Error);
  assert.equal(e.name, "DomainError");
  assert.equal(e.code, "EMPTY");
  assert.equal(e.message, "add a file");
});

// ---------------------------------------------------------------- helpers for focused tests

function job(overrides: Partial<JobSnapshot> = {}): JobSnapshot {
  return {
    state: "QUEUED",
    type: "DOWNLOAD",
    filesTotal: 2,
    filesTransferred: 0,
    errorCount: 0,
    minimumRetryDelay: 600,
    noProgressTimeout: 14 * DAY,
    noProgressSince: null,
    retryAt: null,
    activeSince: null,
    activeSeconds: 0,
    maximumDownloadTime: 90 * DAY,
    ...overrides,
  };
}

function transition(d: Decision): Extract<Decision, { kind: "transition" }> {
  assert.equal(d.kind, "transition", `expected a transition, got ${JSON.stringify(d)}`);
  return d as Extract<Decision, { kind: "transition" }>;
}

function refusal(d: Decision): Extract<Decision, { kind: "refused" }> {
  assert.equal(d.kind, "refused", `expected a refusal, got ${JSON.stringify(d)}`);
  return d as Extract<Decision, { kind: "refused" }>;
}

/** Applies a decision's patch the way the store would. */
function apply(j: JobSnapshot, d: Decision): JobSnapshot {
  assert.notEqual(d.kind, "refused", `unexpected refusal: ${JSON.stringify(d)}`);
  if (d.kind === "refused") return j;
  const { transferCompletedAt: _ignored, ...rest } = d.patch;
  return { ...j, ...rest } as JobSnapshot;
}

// ---------------------------------------------------------------- final states

test("every event on a final state is refused INVALID_STATE, naming the state", () => {
  for (const state of ["ACKNOWLEDGED", "CANCELLED"] as const) {
    for (const type of JOB_EVENT_TYPES) {
      // even with no files (EMPTY would apply) or bad input (BAD_USER_INPUT would apply)
      const event: JobEvent = type === "ADD_FILES" ? { type, count: 0, maxFilesPerJob: 200 } : EVENTS[type];
      const r = refusal(decide(job({ state, filesTotal: 0 }), event, NOW));
      assert.equal(r.code, "INVALID_STATE");
      assert.match(r.message, new RegExp(state));
      assert.match(r.message, /finished and read-only/);
    }
  }
});

// ---------------------------------------------------------------- client calls

test("RESUME of a job with no files is refused EMPTY in every non-final state", () => {
  const expected: Row = {
    QUEUED: "!EMPTY", CONNECTING: "!EMPTY", TRANSFERRING: "!EMPTY", SUSPENDED: "!EMPTY", ERROR: "!EMPTY",
    TRANSIENT_ERROR: "!EMPTY", TRANSFERRED: "!EMPTY", ACKNOWLEDGED: "x", CANCELLED: "x",
  };
  const actual = {} as Row;
  for (const state of JOB_STATES) {
    const j = job({ state, filesTotal: 0 });
    actual[state] = cell(j, decide(j, { type: "RESUME" }, NOW));
  }
  assert.deepEqual(actual, expected);
  assert.match(refusal(decide(job({ state: "SUSPENDED", filesTotal: 0 }), { type: "RESUME" }, NOW)).message, /add at least one file/);
});

test("RESUME from SUSPENDED or ERROR restarts both clocks and keeps the last error", () => {
  for (const state of ["SUSPENDED", "ERROR"] as const) {
    const j = job({ state, error: DENIED, errorCount: 3, noProgressSince: at(-100), activeSeconds: 200 });
    const d = transition(decide(j, { type: "RESUME" }, NOW));
    assert.deepEqual(d.patch, { state: "QUEUED", retryAt: null, activeSince: null, activeSeconds: 0, noProgressSince: null });
    assert.deepEqual(d.effects, [{ type: "WAKE_WORKER" }]);
    assert.equal("warning" in d, false);
  }
});

test("RESUME from TRANSIENT_ERROR retries now but keeps the no-progress clock", () => {
  const j = job({ state: "TRANSIENT_ERROR", noProgressSince: at(-100), retryAt: at(500), activeSeconds: 300 });
  const d = transition(decide(j, { type: "RESUME" }, NOW));
  assert.deepEqual(d.patch, { state: "QUEUED", retryAt: null, activeSince: null, activeSeconds: 0 });
  assert.deepEqual(d.effects, [{ type: "WAKE_WORKER" }]);
});

test("RESUME from TRANSFERRED re-queues only when files were added after the transfer", () => {
  const added = transition(decide(job({ state: "TRANSFERRED", filesTotal: 3, filesTransferred: 2, activeSeconds: 80 }), { type: "RESUME" }, NOW));
  assert.deepEqual(added.patch, { state: "QUEUED", retryAt: null, activeSince: null, activeSeconds: 0, noProgressSince: null });
  assert.deepEqual(added.effects, [{ type: "WAKE_WORKER" }]);
  assert.deepEqual(decide(job({ state: "TRANSFERRED", filesTotal: 3, filesTransferred: 3 }), { type: "RESUME" }, NOW), {
    kind: "unchanged",
    state: "TRANSFERRED",
    patch: {},
    effects: [],
  });
});

test("SUSPEND: stops a running transfer, clears a pending retry, and is a no-op when suspended", () => {
  const running = transition(decide(job({ state: "TRANSFERRING", activeSince: at(-10) }), { type: "SUSPEND" }, NOW));
  assert.deepEqual(running.patch, { state: "SUSPENDED", activeSeconds: 10, activeSince: null });
  assert.deepEqual(running.effects, [{ type: "STOP_TRANSFER" }]);
  const waiting = transition(decide(job({ state: "TRANSIENT_ERROR", retryAt: at(100), noProgressSince: at(-10) }), { type: "SUSPEND" }, NOW));
  assert.deepEqual(waiting.patch, { state: "SUSPENDED", retryAt: null });
  assert.deepEqual(waiting.effects, []);
  assert.deepEqual(decide(job({ state: "SUSPENDED" }), { type: "SUSPEND" }, NOW), {
    kind: "unchanged",
    state: "SUSPENDED",
    patch: {},
    effects: [],
  });
});

test("COMPLETE (download): PARTIAL_COMPLETE only when some files are not transferred", () => {
  const partial = transition(decide(job({ state: "SUSPENDED", filesTotal: 3, filesTransferred: 2 }), { type: "COMPLETE" }, NOW));
  assert.equal(partial.warning, "PARTIAL_COMPLETE");
  assert.deepEqual(partial.patch, { state: "ACKNOWLEDGED" });
  const full = transition(decide(job({ state: "TRANSFERRED", filesTotal: 3, filesTransferred: 3 }), { type: "COMPLETE" }, NOW));
  assert.equal("warning" in full, false);
  const running = transition(decide(job({ state: "CONNECTING", filesTotal: 1, filesTransferred: 0 }), { type: "COMPLETE" }, NOW));
  assert.deepEqual(running.effects, [{ type: "STOP_TRANSFER" }, { type: "COMMIT_FILES" }]);
  const empty = transition(decide(job({ state: "SUSPENDED", filesTotal: 0 }), { type: "COMPLETE" }, NOW));
  assert.equal("warning" in empty, false);
});

test("COMPLETE (upload) before TRANSFERRED says to wait or cancel", () => {
  const r = refusal(decide(job({ type: "UPLOAD", filesTotal: 1, state: "TRANSFERRING" }), { type: "COMPLETE" }, NOW));
  assert.equal(r.code, "INVALID_STATE");
  assert.match(r.message, /only once TRANSFERRED/);
});

test("CANCEL: stop first, then delete temporary files; a pending retry is cleared", () => {
  const d = transition(decide(job({ state: "TRANSFERRING", activeSince: at(-30), activeSeconds: 5 }), { type: "CANCEL" }, NOW));
  assert.deepEqual(d.effects, [{ type: "STOP_TRANSFER" }, { type: "DELETE_TEMP_FILES" }]);
  assert.deepEqual(d.patch, { state: "CANCELLED", activeSeconds: 35, activeSince: null });
  const waiting = transition(decide(job({ state: "TRANSIENT_ERROR", retryAt: at(5) }), { type: "CANCEL" }, NOW));
  assert.deepEqual(waiting.patch, { state: "CANCELLED", retryAt: null });
});

test("ADD_FILES: the per-job limit, one file on upload jobs, and a positive integer count", () => {
  const add = (overrides: Partial<JobSnapshot>, count: number, maxFilesPerJob = 200): string => {
    const j = job(overrides);
    return cell(j, decide(j, { type: "ADD_FILES", count, maxFilesPerJob }, NOW));
  };
  assert.equal(add({ filesTotal: 0 }, 200), "=");
  assert.equal(add({ filesTotal: 199 }, 1), "=");
  assert.equal(add({ filesTotal: 200 }, 1), "!TOO_MANY_FILES");
  assert.equal(add({ filesTotal: 190 }, 11), "!TOO_MANY_FILES");
  assert.equal(add({ filesTotal: 4 }, 1, 5), "=");
  assert.equal(add({ filesTotal: 5 }, 1, 5), "!TOO_MANY_FILES");
  assert.equal(add({ filesTotal: 0 }, 0), "!BAD_USER_INPUT");
  assert.equal(add({ filesTotal: 0 }, -1), "!BAD_USER_INPUT");
  assert.equal(add({ filesTotal: 0 }, 1.5), "!BAD_USER_INPUT");
  assert.equal(add({ filesTotal: 200 }, 0), "!BAD_USER_INPUT", "bad input is reported before the limit");
  for (const type of ["UPLOAD", "UPLOAD_REPLY"] as const) {
    assert.equal(add({ type, filesTotal: 0 }, 1), "=");
    assert.equal(add({ type, filesTotal: 0 }, 2), "!TOO_MANY_FILES");
    assert.equal(add({ type, filesTotal: 1 }, 1), "!TOO_MANY_FILES");
  }
  const r = refusal(decide(job({ filesTotal: 200 }), { type: "ADD_FILES", count: 1, maxFilesPerJob: 200 }, NOW));
  assert.match(r.message, /limit of 200/);
});

// ---------------------------------------------------------------- worker events

test("START always starts a stint (activeSince = now) and keeps the banked seconds", () => {
  const first = transition(decide(job({ state: "QUEUED" }), { type: "START" }, NOW));
  assert.deepEqual(first.patch, { state: "CONNECTING", activeSince: NOW });
  assert.deepEqual(first.effects, []);
  // A stale activeSince (e.g. a row from before stints were banked) is overwritten, not continued.
  const later = transition(decide(job({ state: "QUEUED", activeSince: at(-500), activeSeconds: 40 }), { type: "START" }, NOW));
  assert.deepEqual(later.patch, { state: "CONNECTING", activeSince: NOW });
});

test("CONNECTED clears the error but not the no-progress clock (connecting is not progress)", () => {
  const d = transition(
    decide(job({ state: "CONNECTING", error: NET_ERROR, noProgressSince: at(-60), activeSince: at(-5), activeSeconds: 9 }), { type: "CONNECTED" }, NOW),
  );
  assert.deepEqual(d.patch, { state: "TRANSFERRING", error: null }, "the stint goes on: activeSince and activeSeconds untouched");
  assert.deepEqual(d.effects, []);
});

test("PROGRESS resets the no-progress clock without a state change", () => {
  for (const state of ["CONNECTING", "TRANSFERRING"] as const) {
    assert.deepEqual(decide(job({ state, noProgressSince: at(-60) }), { type: "PROGRESS" }, NOW), {
      kind: "unchanged",
      state,
      patch: { noProgressSince: null },
      effects: [],
    });
  }
});

test("ALL_FILES_DONE stamps the completion time, clears the clocks and the error, and banks the stint", () => {
  const d = transition(
    decide(
      job({ state: "TRANSFERRING", activeSince: at(-60), activeSeconds: 15, noProgressSince: at(-30), error: NET_ERROR }),
      { type: "ALL_FILES_DONE" },
      NOW,
    ),
  );
  assert.deepEqual(d.patch, {
    state: "TRANSFERRED",
    transferCompletedAt: NOW,
    error: null,
    retryAt: null,
    noProgressSince: null,
    activeSince: null,
    activeSeconds: 75,
  });
  assert.deepEqual(d.effects, []);
});

test("YIELD returns a running job to the queue, keeps the no-progress clock and banks the stint", () => {
  const d = transition(decide(job({ state: "TRANSFERRING", activeSince: at(-60), noProgressSince: at(-20) }), { type: "YIELD" }, NOW));
  assert.deepEqual(d.patch, { state: "QUEUED", activeSeconds: 60, activeSince: null });
  assert.deepEqual(d.effects, [{ type: "WAKE_WORKER" }]);
});

test("FATAL_FAILURE counts the error and records it", () => {
  const d = transition(decide(job({ state: "TRANSFERRING", errorCount: 4, activeSince: at(-3) }), { type: "FATAL_FAILURE", error: DENIED }, NOW));
  assert.deepEqual(d.patch, { state: "ERROR", errorCount: 5, error: DENIED, retryAt: null, activeSeconds: 3, activeSince: null });
  const queued = transition(decide(job({ state: "QUEUED", activeSeconds: 4 }), { type: "FATAL_FAILURE", error: DENIED }, NOW));
  assert.deepEqual(queued.patch, { state: "ERROR", errorCount: 1, error: DENIED, retryAt: null }, "no stint to bank from QUEUED");
  assert.deepEqual(d.effects, []);
});

// ---------------------------------------------------------------- retry and no-progress arithmetic

function fail(j: JobSnapshot, now: Date = NOW, retryAfterSeconds?: number): Extract<Decision, { kind: "transition" }> {
  const event: JobEvent =
    retryAfterSeconds === undefined
      ? { type: "TRANSIENT_FAILURE", error: NET_ERROR }
      : { type: "TRANSIENT_FAILURE", error: NET_ERROR, retryAfterSeconds };
  return transition(decide(j, event, now));
}

test("TRANSIENT_FAILURE: first error starts the no-progress clock and schedules the retry after minimumRetryDelay", () => {
  const d = fail(job({ state: "TRANSFERRING", errorCount: 2, activeSince: at(-45) }));
  assert.deepEqual(d.patch, {
    state: "TRANSIENT_ERROR",
    errorCount: 3,
    error: NET_ERROR,
    noProgressSince: NOW,
    retryAt: at(600),
    activeSeconds: 45,
    activeSince: null,
  });
  assert.deepEqual(d.effects, []);
});

test("TRANSIENT_FAILURE: a running no-progress clock is kept, not restarted", () => {
  const d = fail(job({ state: "CONNECTING", noProgressSince: at(-1000) }));
  assert.equal(d.to, "TRANSIENT_ERROR");
  assert.deepEqual(d.patch.noProgressSince, at(-1000));
  assert.deepEqual(d.patch.retryAt, at(600));
});

test("TRANSIENT_FAILURE: Retry-After can lengthen the delay but never shorten it", () => {
  assert.deepEqual(fail(job(), NOW, 900).patch.retryAt, at(900));
  assert.deepEqual(fail(job(), NOW, 30).patch.retryAt, at(600));
  assert.deepEqual(fail(job(), NOW, 0).patch.retryAt, at(600));
  assert.deepEqual(fail(job(), NOW, -5).patch.retryAt, at(600));
  assert.deepEqual(fail(job(), NOW, Number.NaN).patch.retryAt, at(600));
  assert.deepEqual(fail(job({ minimumRetryDelay: 5 }), NOW, 60).patch.retryAt, at(60));
  assert.deepEqual(fail(job({ minimumRetryDelay: 5 })).patch.retryAt, at(5));
});

test("TRANSIENT_FAILURE goes straight to ERROR when the timeout is 0", () => {
  const d = fail(job({ noProgressTimeout: 0, errorCount: 1 }));
  assert.deepEqual(d.patch, { state: "ERROR", errorCount: 2, error: NET_ERROR, noProgressSince: NOW, retryAt: null });
});

test("TRANSIENT_FAILURE goes straight to ERROR when the retry delay exceeds the timeout", () => {
  assert.equal(fail(job({ minimumRetryDelay: 601, noProgressTimeout: 600 })).to, "ERROR");
  assert.equal(fail(job({ minimumRetryDelay: 600, noProgressTimeout: 600 })).to, "TRANSIENT_ERROR", "equal is not longer");
  assert.equal(fail(job({ minimumRetryDelay: 60, noProgressTimeout: 600 }), NOW, 601).to, "ERROR");
  assert.equal(fail(job({ minimumRetryDelay: 60, noProgressTimeout: 600 }), NOW, 600).to, "TRANSIENT_ERROR");
});

test("TRANSIENT_FAILURE goes to ERROR once the no-progress clock has run for the timeout", () => {
  const j = job({ noProgressTimeout: 3600, noProgressSince: at(-3600) });
  const d = fail(j);
  assert.equal(d.to, "ERROR");
  assert.deepEqual(d.patch.retryAt, null);
  assert.deepEqual(
    d.patch.error,
    { context: "GENERAL_QUEUE_MANAGER", code: "NO_PROGRESS", message: `no progress for 3600 s; the last error was: ${NET_ERROR.message}`, fileId: NET_ERROR.fileId, httpStatus: NET_ERROR.httpStatus },
    "NO_PROGRESS, quoting the transfer's error: the same code the sweep gives",
  );
  assert.equal(fail(job({ noProgressTimeout: 3600, noProgressSince: at(-3599) })).to, "TRANSIENT_ERROR");
});

test("RETRY_DUE: due at retryAt exactly, refused before it with the due time", () => {
  const j = job({ state: "TRANSIENT_ERROR", retryAt: NOW, noProgressSince: at(-600) });
  const d = transition(decide(j, { type: "RETRY_DUE" }, NOW));
  assert.deepEqual(d.patch, { state: "QUEUED", retryAt: null });
  assert.deepEqual(d.effects, [{ type: "WAKE_WORKER" }]);
  const early = refusal(decide(job({ state: "TRANSIENT_ERROR", retryAt: at(90) }), { type: "RETRY_DUE" }, NOW));
  assert.equal(early.code, "INVALID_STATE");
  assert.match(early.message, /retry not due until 2025-03-01T12:01:30\.000Z \(in 90 s\)/);
  const early1ms = refusal(decide(job({ state: "TRANSIENT_ERROR", retryAt: new Date(NOW.getTime() + 1) }), { type: "RETRY_DUE" }, NOW));
  assert.match(early1ms.message, /in 1 s/);
  const none = refusal(decide(job({ state: "TRANSIENT_ERROR", retryAt: null }), { type: "RETRY_DUE" }, NOW));
  assert.equal(none.code, "INVALID_STATE");
});

test("NO_PROGRESS_TIMEOUT: fires at the timeout exactly, quoting the last error, without counting a new one", () => {
  const j = job({
    state: "TRANSIENT_ERROR",
    errorCount: 7,
    noProgressTimeout: 3600,
    noProgressSince: at(-3600),
    retryAt: at(100),
    error: NET_ERROR,
  });
  const d = transition(decide(j, { type: "NO_PROGRESS_TIMEOUT" }, NOW));
  assert.deepEqual(d.patch, {
    state: "ERROR",
    retryAt: null,
    error: {
      context: "GENERAL_QUEUE_MANAGER",
      code: "NO_PROGRESS",
      message: "no progress for 3600 s; the last error was: server unavailable",
      fileId: "file-1",
      httpStatus: 503,
    },
  });
  assert.deepEqual(d.effects, []);

  const early = refusal(decide({ ...j, noProgressSince: at(-3599) }, { type: "NO_PROGRESS_TIMEOUT" }, NOW));
  assert.equal(early.code, "INVALID_STATE");
  assert.match(early.message, /not reached until 2025-03-01T12:00:01\.000Z/);
  assert.equal(refusal(decide({ ...j, noProgressSince: null }, { type: "NO_PROGRESS_TIMEOUT" }, NOW)).code, "INVALID_STATE");

  const { error: _omitted, ...unknownError } = j;
  const anon = transition(decide(unknownError, { type: "NO_PROGRESS_TIMEOUT" }, NOW));
  assert.deepEqual(anon.patch.error, {
    context: "GENERAL_QUEUE_MANAGER",
    code: "NO_PROGRESS",
    message: "no progress for 3600 s; the last error was: unknown",
    fileId: null,
    httpStatus: null,
  });
});

test("MAX_DOWNLOAD_TIME_EXCEEDED: fires at the limit exactly, counts the error and stops the transfer", () => {
  const j = job({ state: "TRANSFERRING", errorCount: 1, maximumDownloadTime: 7200, activeSince: at(-7200) });
  const d = transition(decide(j, { type: "MAX_DOWNLOAD_TIME_EXCEEDED" }, NOW));
  assert.equal(d.to, "ERROR");
  assert.deepEqual(d.effects, [{ type: "STOP_TRANSFER" }]);
  assert.equal(d.patch.errorCount, 2);
  assert.deepEqual(Object.keys(d.patch).sort(), ["activeSeconds", "activeSince", "error", "errorCount", "state"]);
  assert.equal(d.patch.activeSeconds, 7200, "the final stint is banked");
  assert.equal(d.patch.activeSince, null);
  const err = d.patch.error;
  assert.ok(err);
  assert.equal(err.context, "GENERAL_QUEUE_MANAGER");
  assert.equal(err.code, "MAXDOWNLOAD_TIMEOUT");
  assert.match(err.message, /7200 s/);
  assert.equal(err.fileId, null);
  assert.equal(err.httpStatus, null);

  const early = refusal(decide({ ...j, activeSince: at(-7199) }, { type: "MAX_DOWNLOAD_TIME_EXCEEDED" }, NOW));
  assert.equal(early.code, "INVALID_STATE");
  assert.match(early.message, /7199 s of 7200 s counted; not until 2025-03-01T12:00:01\.000Z/);
  assert.equal(refusal(decide({ ...j, activeSince: null }, { type: "MAX_DOWNLOAD_TIME_EXCEEDED" }, NOW)).code, "INVALID_STATE");
  // Banked seconds count together with the current stint.
  assert.equal(transition(decide({ ...j, activeSeconds: 7000, activeSince: at(-200) }, { type: "MAX_DOWNLOAD_TIME_EXCEEDED" }, NOW)).to, "ERROR");
  assert.equal(refusal(decide({ ...j, activeSeconds: 7000, activeSince: at(-199.999) }, { type: "MAX_DOWNLOAD_TIME_EXCEEDED" }, NOW)).code, "INVALID_STATE");
  // Banked time alone, with no stint running, is refused by state: the limit is checked only while running.
  assert.equal(refusal(decide({ ...j, state: "QUEUED", activeSeconds: 9000, activeSince: null }, { type: "MAX_DOWNLOAD_TIME_EXCEEDED" }, NOW)).code, "INVALID_STATE");
});

// ---------------------------------------------------------------- max-download time counts only CONNECTING/TRANSFERRING

test("activeTime: banked seconds plus the running stint, fractional; a future start counts 0", () => {
  assert.equal(activeTime({ activeSeconds: 0, activeSince: null }, NOW), 0);
  assert.equal(activeTime({ activeSeconds: 42, activeSince: null }, NOW), 42);
  assert.equal(activeTime({ activeSeconds: 42, activeSince: at(-8) }, NOW), 50);
  assert.equal(activeTime({ activeSeconds: 0, activeSince: at(-1.5) }, NOW), 1.5);
  assert.equal(activeTime({ activeSeconds: 10, activeSince: at(30) }, NOW), 10, "clock skew: a stint starting later than now counts 0");
});

test("time waiting in TRANSIENT_ERROR (and QUEUED) between two stints is not counted", () => {
  let j = job({ state: "QUEUED", minimumRetryDelay: 600, maximumDownloadTime: 3600 });
  j = apply(j, decide(j, { type: "START" }, at(0)));
  j = apply(j, decide(j, { type: "CONNECTED" }, at(2)));
  j = apply(j, fail(j, at(100)));
  assert.equal(j.state, "TRANSIENT_ERROR");
  assert.equal(j.activeSeconds, 100);
  assert.equal(j.activeSince, null);
  assert.equal(activeTime(j, at(5000)), 100, "the clock stands still while waiting for the retry");
  j = apply(j, decide(j, { type: "RETRY_DUE" }, at(700)));
  assert.equal(j.activeSeconds, 100);
  assert.equal(j.activeSince, null);
  j = apply(j, decide(j, { type: "START" }, at(900))); // claimed 200 s after becoming due
  assert.deepEqual(j.activeSince, at(900));
  assert.equal(activeTime(j, at(950)), 150, "100 s banked + 50 s of this stint; not the 950 s of wall time");
  j = apply(j, decide(j, { type: "CONNECTED" }, at(901)));
  assert.equal(refusal(decide(j, { type: "MAX_DOWNLOAD_TIME_EXCEEDED" }, at(3600))).code, "INVALID_STATE", "wall time 3600 s, active 2800 s");
  assert.equal(transition(decide(j, { type: "MAX_DOWNLOAD_TIME_EXCEEDED" }, at(4400))).to, "ERROR", "active 100 + 3500 s");
});

test("two stints of 40 s with a 3600 s wait between them exceed a 60 s maximum 20 s into the second", () => {
  let j = job({ state: "QUEUED", maximumDownloadTime: 60 });
  j = apply(j, decide(j, { type: "START" }, at(0)));
  j = apply(j, decide(j, { type: "CONNECTED" }, at(1)));
  assert.equal(refusal(decide(j, { type: "MAX_DOWNLOAD_TIME_EXCEEDED" }, at(40))).code, "INVALID_STATE");
  j = apply(j, decide(j, { type: "YIELD" }, at(40)));
  assert.equal(j.activeSeconds, 40);
  // 3600 s in the queue.
  j = apply(j, decide(j, { type: "START" }, at(3640)));
  j = apply(j, decide(j, { type: "CONNECTED" }, at(3641)));
  const early = refusal(decide(j, { type: "MAX_DOWNLOAD_TIME_EXCEEDED" }, at(3659)));
  assert.equal(early.code, "INVALID_STATE");
  assert.match(early.message, /59 s of 60 s counted; not until 2025-03-01T13:01:00\.000Z/);
  const d = transition(decide(j, { type: "MAX_DOWNLOAD_TIME_EXCEEDED" }, at(3660)));
  assert.equal(d.to, "ERROR");
  assert.equal(d.patch.error?.code, "MAXDOWNLOAD_TIMEOUT");
  assert.equal(d.patch.activeSeconds, 60);
  assert.equal(d.patch.activeSince, null);
});

test("RESUME resets the max-download clock: the next stint has the whole budget again", () => {
  let j = job({ state: "QUEUED", maximumDownloadTime: 60 });
  j = apply(j, decide(j, { type: "START" }, at(0)));
  j = apply(j, decide(j, { type: "MAX_DOWNLOAD_TIME_EXCEEDED" }, at(60)));
  assert.equal(j.state, "ERROR");
  assert.equal(j.activeSeconds, 60);
  j = apply(j, decide(j, { type: "RESUME" }, at(100)));
  assert.equal(j.state, "QUEUED");
  assert.equal(j.activeSeconds, 0);
  assert.equal(j.activeSince, null);
  j = apply(j, decide(j, { type: "START" }, at(200)));
  assert.equal(refusal(decide(j, { type: "MAX_DOWNLOAD_TIME_EXCEEDED" }, at(259))).code, "INVALID_STATE");
  assert.equal(transition(decide(j, { type: "MAX_DOWNLOAD_TIME_EXCEEDED" }, at(260))).to, "ERROR");
  // Every RESUME that re-queues resets it; one that changes nothing (already running) does not.
  for (const state of ["SUSPENDED", "ERROR", "TRANSIENT_ERROR"] as const) {
    assert.equal(transition(decide(job({ state, activeSeconds: 55 }), { type: "RESUME" }, NOW)).patch.activeSeconds, 0);
  }
  assert.deepEqual(decide(job({ state: "TRANSFERRING", activeSeconds: 55, activeSince: at(-5) }), { type: "RESUME" }, NOW), {
    kind: "unchanged",
    state: "TRANSFERRING",
    patch: {},
    effects: [],
  });
});

test("SUSPEND from TRANSFERRING banks the stint (rounded down); suspended time is not counted", () => {
  let j = job({ state: "TRANSFERRING", activeSeconds: 30, activeSince: at(-12.7), maximumDownloadTime: 60 });
  const d = transition(decide(j, { type: "SUSPEND" }, NOW));
  assert.deepEqual(d.patch, { state: "SUSPENDED", activeSeconds: 42, activeSince: null });
  assert.deepEqual(d.effects, [{ type: "STOP_TRANSFER" }]);
  j = apply(j, d);
  assert.equal(activeTime(j, at(10 * DAY)), 42);
  // Suspend from CONNECTING banks too, and the stint started by CONNECTED's predecessor START carries through CONNECTED.
  let k = job({ state: "QUEUED" });
  k = apply(k, decide(k, { type: "START" }, at(0)));
  k = apply(k, decide(k, { type: "CONNECTED" }, at(3)));
  k = apply(k, decide(k, { type: "SUSPEND" }, at(8)));
  assert.equal(k.activeSeconds, 8);
  assert.equal(k.activeSince, null);
});

test("a job failing transiently without progress retries every minimumRetryDelay, then errors at the timeout", () => {
  // minimumRetryDelay 600 s, NoProgressTimeout 3600 s: failures at 0, 600, ..., 3000 s wait; the one at 3600 s is fatal.
  // Every attempt connects (CONNECTED) but moves no bytes, so the clock must keep running.
  let j = job({ state: "QUEUED", minimumRetryDelay: 600, noProgressTimeout: 3600 });
  const outcomes: string[] = [];
  for (let t = 0; t <= 3600; t += 600) {
    const now = at(t);
    j = apply(j, decide(j, { type: "START" }, now));
    j = apply(j, decide(j, { type: "CONNECTED" }, now));
    const failed = fail(j, now);
    outcomes.push(`${t}:${failed.to}`);
    j = apply(j, failed);
    if (j.state === "ERROR") break;
    // not due one second early, due on time
    assert.equal(decide(j, { type: "RETRY_DUE" }, at(t + 599)).kind, "refused");
    j = apply(j, decide(j, { type: "RETRY_DUE" }, at(t + 600)));
  }
  assert.deepEqual(outcomes, [
    "0:TRANSIENT_ERROR",
    "600:TRANSIENT_ERROR",
    "1200:TRANSIENT_ERROR",
    "1800:TRANSIENT_ERROR",
    "2400:TRANSIENT_ERROR",
    "3000:TRANSIENT_ERROR",
    "3600:ERROR",
  ]);
  assert.equal(j.errorCount, 7);
  assert.deepEqual(j.noProgressSince, at(0));
  assert.equal(j.retryAt, null);
});

test("progress in between resets the no-progress clock", () => {
  let j = job({ state: "TRANSFERRING", minimumRetryDelay: 600, noProgressTimeout: 3600, activeSince: at(0) });
  j = apply(j, fail(j, at(0)));
  assert.deepEqual(j.noProgressSince, at(0));
  j = apply(j, decide(j, { type: "RETRY_DUE" }, at(600)));
  j = apply(j, decide(j, { type: "START" }, at(600)));
  j = apply(j, decide(j, { type: "PROGRESS" }, at(601)));
  assert.equal(j.noProgressSince, null);
  const later = fail(j, at(3700));
  assert.equal(later.to, "TRANSIENT_ERROR", "the clock restarted at the error after the progress");
  assert.deepEqual(later.patch.noProgressSince, at(3700));
});

// ---------------------------------------------------------------- purity

test("decide is pure: it neither mutates its inputs nor shares effect objects between calls", () => {
  const deepFreeze = <T>(o: T): T => {
    for (const v of Object.values(o as object)) if (v && typeof v === "object" && !(v instanceof Date)) deepFreeze(v);
    return Object.freeze(o);
  };
  for (const state of JOB_STATES) {
    for (const type of JOB_EVENT_TYPES) {
      const j = deepFreeze(gridJob(state, "DOWNLOAD"));
      const e = deepFreeze({ ...EVENTS[type] });
      const a = decide(j, e, NOW);
      const b = decide(j, e, NOW);
      assert.deepEqual(a, b);
      if (a.kind !== "refused" && b.kind !== "refused" && a.effects.length > 0) {
        assert.notEqual(a.effects[0], b.effects[0]);
        const patch: JobPatch = a.patch;
        assert.ok(patch !== (b as { patch: JobPatch }).patch);
      }
    }
  }
});
