import { useEffect, useMemo, useRef, useState } from "react";
import { useClient, useQuery } from "urql";
import { JOB_QUERY, PROGRESS_SUBSCRIPTION, STATE_CHANGES_SUBSCRIPTION, describeError, type JobDetail, type JobSummary, type ProgressUpdate, type StateChange } from "./api";
import { ErrorBox, JobActions, ProgressBar, StateBadge } from "./components";
import { formatBytes, formatSeconds, formatTime } from "./format";
import { newer, withProgress } from "./live";

/** One job: properties, files with their own progress, the last error, and the whole event history, live. */
export function JobPage({ id }: { id: string }) {
  const client = useClient();
  const [result, reexecute] = useQuery<{ job: JobDetail | null }>({ query: JOB_QUERY, variables: { id } });
  const [history, setHistory] = useState<StateChange[]>([]);
  const [historyError, setHistoryError] = useState<string | null>(null);
  const [replayed, setReplayed] = useState(false);
  const [progress, setProgress] = useState<ProgressUpdate | undefined>(undefined);
  const [fromAction, setFromAction] = useState<JobSummary | undefined>(undefined);

  // Refetch the job (files and all), at most once a second, when events say it changed.
  const lastFetch = useRef(0);
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const refetchSoon = useRef(() => {});
  refetchSoon.current = () => {
    if (timer.current) return;
    const wait = Math.max(0, lastFetch.current + 1000 - Date.now());
    timer.current = setTimeout(() => {
      timer.current = null;
      lastFetch.current = Date.now();
      reexecute({ requestPolicy: "network-only" });
    }, wait);
  };
  useEffect(() => () => void (timer.current && clearTimeout(timer.current)), []);

  useEffect(() => {
    setHistory([]);
    setHistoryError(null);
    setReplayed(false);
    setProgress(undefined);
    setFromAction(undefined);
    // The whole history ("0"), then live transitions. A reconnect replays it again: keep one of each cursor.
    const seen = new Set<string>();
    const states = client.subscription<{ jobStateChanged: StateChange }>(STATE_CHANGES_SUBSCRIPTION, { jobId: id, after: "0" }).subscribe((r) => {
      if (r.error) setHistoryError(describeError(r.error));
      const e = r.data?.jobStateChanged;
      if (!e || seen.has(e.cursor)) return;
      seen.add(e.cursor);
      setHistoryError(null);
      setHistory((h) => [...h, e].sort((a, b) => (BigInt(a.cursor) < BigInt(b.cursor) ? -1 : 1)));
      refetchSoon.current();
    });
    const prog = client.subscription<{ jobProgress: ProgressUpdate }>(PROGRESS_SUBSCRIPTION, { jobId: id }).subscribe((r) => {
      const p = r.data?.jobProgress;
      if (!p) return;
      setProgress((cur) => (!cur || Date.parse(p.at) >= Date.parse(cur.at) ? p : cur));
      refetchSoon.current(); // the files' own byte counts
    });
    // The replay arrives in one burst; after a quiet moment, call it replayed (for the "live" label).
    const t = setTimeout(() => setReplayed(true), 800);
    return () => {
      states.unsubscribe();
      prog.unsubscribe();
      clearTimeout(t);
    };
  }, [client, id]);

  const base = result.data?.job ?? null;
  const job = useMemo((): JobDetail | null => {
    if (!base) return null;
    // The newest of: the query, the last event's snapshot, a mutation's payload; then live progress.
    let summary: JobSummary = base;
    const last = history[history.length - 1]?.job;
    if (last) summary = newer(summary, last);
    if (fromAction) summary = newer(summary, fromAction);
    return withProgress({ ...base, ...summary }, progress);
  }, [base, history, fromAction, progress]);

  if (result.fetching && !result.data) return <p className="muted">Loading…</p>;
  if (result.error && !result.data) {
    return (
      <div className="banner error" role="alert">
        Could not load the job: {describeError(result.error)}
      </div>
    );
  }
  if (!job) {
    return (
      <div className="banner warn" data-testid="job-missing">
        No job with the id <code>{id}</code> (or it is not yours). <a href="#/">Back to the list</a>
      </div>
    );
  }

  const files = job.files.edges.map((e) => e.node);
  return (
    <section className="job-page" data-testid={`job-page-${job.id}`}>
      <p>
        <a href="#/" data-testid="back-to-list">
          ← all jobs
        </a>
      </p>
      <div className="job-head">
        <h2 data-testid="job-title">{job.displayName || <em>(no name)</em>}</h2>
        <StateBadge state={job.state} testId={`state-${job.id}`} />
      </div>
      {job.description ? <p className="description">{job.description}</p> : null}
      <ProgressBar
        transferred={job.progress.bytesTransferred}
        total={job.progress.bytesTotal}
        rate={job.state === "TRANSFERRING" ? (progress?.bytesPerSecond ?? null) : null}
        testId={`progress-${job.id}`}
      />
      <JobActions job={job} onDone={setFromAction} />

      {job.error ? (
        <>
          <h3>Error</h3>
          <ErrorBox error={job.error} testId={`job-error-${job.id}`} />
        </>
      ) : null}

      <h3>Properties</h3>
      <dl className="props">
        <dt>Id</dt>
        <dd>
          <code>{job.id}</code>
        </dd>
        <dt>Owner</dt>
        <dd>{job.owner}</dd>
        <dt>Type</dt>
        <dd>{job.type}</dd>
        <dt>Priority</dt>
        <dd data-testid="job-priority">{job.priority}</dd>
        <dt>Files</dt>
        <dd>
          {job.progress.filesTransferred} of {job.progress.filesTotal} transferred
        </dd>
        <dt>Errors so far</dt>
        <dd>{job.errorCount}</dd>
        {job.retryAt ? (
          <>
            <dt>Retry at</dt>
            <dd>{formatTime(job.retryAt)}</dd>
          </>
        ) : null}
        <dt>Minimum retry delay</dt>
        <dd>{formatSeconds(job.minimumRetryDelay)}</dd>
        <dt>No-progress timeout</dt>
        <dd>{formatSeconds(job.noProgressTimeout)}</dd>
        <dt>Maximum download time</dt>
        <dd>{formatSeconds(job.maximumDownloadTime)}</dd>
        <dt>Bandwidth cap</dt>
        <dd>{job.maxBytesPerSecond ? `${formatBytes(job.maxBytesPerSecond)}/s` : "none"}</dd>
        <dt>Credentials</dt>
        <dd>{job.hasCredentials ? "set" : "none"}</dd>
        {job.httpHeaderNames.length ? (
          <>
            <dt>Custom headers</dt>
            <dd>{job.httpHeaderNames.join(", ")}</dd>
          </>
        ) : null}
        <dt>Created</dt>
        <dd title={job.times.createdAt}>{formatTime(job.times.createdAt)}</dd>
        <dt>Modified</dt>
        <dd title={job.times.modifiedAt}>{formatTime(job.times.modifiedAt)}</dd>
        {job.times.transferCompletedAt ? (
          <>
            <dt>Transfer completed</dt>
            <dd title={job.times.transferCompletedAt}>{formatTime(job.times.transferCompletedAt)}</dd>
          </>
        ) : null}
      </dl>

      <h3>
        Files <span className="muted">({job.files.totalCount})</span>
      </h3>
      <table className="files" data-testid="file-table">
        <thead>
          <tr>
            <th>#</th>
            <th>Local path</th>
            <th>Remote URL</th>
            <th className="col-progress">Progress</th>
            <th>Status</th>
          </tr>
        </thead>
        <tbody>
          {files.map((f) => (
            <tr key={f.id} data-testid={`file-row-${f.id}`}>
              <td className="num">{f.position + 1}</td>
              <td>
                <code>{f.localPath}</code>
              </td>
              <td className="url">
                <code title={f.remoteUrl}>{f.remoteUrl}</code>
                {f.sha256 ? <div className="muted small">sha256 {f.sha256.slice(0, 16)}…</div> : null}
              </td>
              <td className="col-progress">
                <ProgressBar transferred={f.bytesTransferred} total={f.bytesTotal} testId={`file-progress-${f.id}`} compact />
              </td>
              <td>{f.completed ? "completed" : f.transferred ? "transferred" : "pending"}</td>
            </tr>
          ))}
          {files.length === 0 ? (
            <tr>
              <td colSpan={5} className="empty">
                No files yet: add some with <code>addFiles</code>.
              </td>
            </tr>
          ) : null}
        </tbody>
      </table>
      {job.files.totalCount > files.length ? <p className="muted small">The first {files.length} of {job.files.totalCount} files.</p> : null}

      <h3>
        History <span className="muted small">{replayed ? "live" : "replaying…"}</span>
      </h3>
      {historyError ? (
        <div className="banner warn" role="status">
          {historyError}
        </div>
      ) : null}
      <table className="history" data-testid="history">
        <thead>
          <tr>
            <th>Cursor</th>
            <th>At</th>
            <th>Transition</th>
            <th>Actor</th>
            <th>Error</th>
          </tr>
        </thead>
        <tbody>
          {history.map((e) => (
            <tr key={e.cursor} data-testid={`history-${e.cursor}`} data-state={e.state} data-previous-state={e.previousState ?? ""}>
              <td className="num">{e.cursor}</td>
              <td title={e.at}>{formatTime(e.at)}</td>
              <td>
                {e.previousState ? (
                  <>
                    <StateBadge state={e.previousState} /> → <StateBadge state={e.state} />
                  </>
                ) : (
                  <>
                    <span className="muted">created</span> → <StateBadge state={e.state} />
                  </>
                )}
              </td>
              <td>{e.actor ?? <span className="muted">service</span>}</td>
              <td>{e.error ? <span className="error-code" title={e.error.message}>{e.error.code}</span> : null}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
