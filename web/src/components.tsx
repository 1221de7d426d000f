import { useState } from "react";
import { useClient } from "urql";
import { FINAL_STATES, actionMutation, describeError, type JobAction, type JobErrorInfo, type JobState, type JobSummary } from "./api";
import { formatBytes, formatRate, humanState, percentOf } from "./format";

export function StateBadge({ state, testId }: { state: JobState; testId?: string }) {
  return (
    <span className={`badge state-${state.toLowerCase()}`} data-testid={testId} data-state={state} title={humanState(state)}>
      {state}
    </span>
  );
}

export function ProgressBar(props: { transferred: string; total: string | null; testId?: string; rate?: number | null; compact?: boolean }) {
  const pct = percentOf(props.transferred, props.total);
  const label = `${formatBytes(props.transferred)} / ${props.total === null ? "?" : formatBytes(props.total)}`;
  return (
    <div className={`progress${props.compact ? " compact" : ""}`} data-testid={props.testId} data-percent={pct ?? ""}>
      <div
        className={`bar${pct === null ? " unknown" : ""}${pct === 100 ? " done" : ""}`}
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={pct ?? undefined}
        aria-label={label}
      >
        <div className="fill" style={{ width: `${pct ?? 0}%` }} />
      </div>
      <div className="progress-text">
        <span>{label}</span>
        <span className="pct">{pct === null ? "size not known yet" : `${pct.toFixed(pct === 100 || pct === 0 ? 0 : 1)}%`}</span>
        {props.rate ? <span className="rate">{formatRate(props.rate)}</span> : null}
      </div>
    </div>
  );
}

export function ErrorBox({ error, testId }: { error: JobErrorInfo; testId?: string }) {
  return (
    <div className="job-error" data-testid={testId}>
      <div>
        <strong className="code">{error.code}</strong> <span className="muted">in {error.context}</span>
        {error.httpStatus ? <span className="muted"> · HTTP {error.httpStatus}</span> : null}
      </div>
      <div className="message">{error.message}</div>
      {error.file ? (
        <div className="muted small">
          file: <code>{error.file.localPath}</code> ← <code>{error.file.remoteUrl}</code>
        </div>
      ) : null}
    </div>
  );
}

const ACTIONS: { action: JobAction; label: string; key: string; title: string }[] = [
  { action: "suspendJob", label: "Suspend", key: "suspend", title: "Stop transferring; Resume continues from the byte offset" },
  { action: "resumeJob", label: "Resume", key: "resume", title: "Queue the job for transfer (retry now after an error)" },
  { action: "completeJob", label: "Complete", key: "complete", title: "Move the transferred files to their final names and end the job" },
  { action: "cancelJob", label: "Cancel", key: "cancel", title: "End the job and delete its temporary files" },
];

/** Suspend / Resume / Complete / Cancel for one job, with the API's refusal (message and code) shown. */
export function JobActions({ job, onDone }: { job: Pick<JobSummary, "id" | "state" | "displayName">; onDone?: (job: JobSummary) => void }) {
  const client = useClient();
  const [busy, setBusy] = useState<JobAction | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [warnings, setWarnings] = useState<string[]>([]);
  const finished = FINAL_STATES.has(job.state);

  async function run(action: JobAction) {
    if (action === "cancelJob" && !window.confirm(`Cancel "${job.displayName}"? Its temporary files are deleted.`)) return;
    if (action === "completeJob" && job.state !== "TRANSFERRED" && !window.confirm(`"${job.displayName}" is ${job.state}: files not fully transferred will be dropped. Complete anyway?`)) return;
    setBusy(action);
    setError(null);
    setWarnings([]);
    try {
      const r = await client.mutation<Record<string, { warnings: string[]; job: JobSummary }>>(actionMutation(action), { id: job.id }).toPromise();
      if (r.error) setError(describeError(r.error));
      const payload = r.data?.[action];
      if (payload) {
        setWarnings(payload.warnings);
        onDone?.(payload.job);
      }
    } finally {
      setBusy(null);
    }
  }

  return (
    <div className="actions">
      <div className="buttons">
        {ACTIONS.map((a) => (
          <button
            key={a.key}
            type="button"
            className={`btn btn-${a.key}`}
            data-testid={`btn-${a.key}-${job.id}`}
            title={a.title}
            disabled={finished || busy !== null}
            onClick={() => void run(a.action)}
          >
            {busy === a.action ? "…" : a.label}
          </button>
        ))}
      </div>
      {error ? (
        <div className="action-error" role="alert" data-testid={`action-error-${job.id}`}>
          {error}
          <button type="button" className="link" onClick={() => setError(null)} aria-label="dismiss">
            ×
          </button>
        </div>
      ) : null}
      {warnings.length ? (
        <div className="action-warning" data-testid={`action-warning-${job.id}`}>
          warning: {warnings.join(", ")}
        </div>
      ) : null}
    </div>
  );
}
