import { useEffect, useMemo, useRef } from "react";
import { useQuery } from "urql";
import { JOBS_QUERY, JOB_STATES, PRIORITIES, UNFINISHED_STATES, describeError, type JobState, type JobSummary, type Priority, type Viewer } from "./api";
import { JobActions, ProgressBar, StateBadge } from "./components";
import { formatTime, humanState } from "./format";
import { newer, withProgress, type LiveFeed } from "./live";

export interface ListFilter {
  states: JobState[];
  priorities: Priority[];
  allUsers: boolean;
}

export const DEFAULT_FILTER: ListFilter = { states: UNFINISHED_STATES, priorities: [...PRIORITIES], allUsers: false };

/** How many of the newest jobs the list asks for. */
const PAGE = 200;

const BY_PRIORITY: Record<Priority, number> = { FOREGROUND: 0, HIGH: 1, NORMAL: 2, LOW: 3 };

export function JobList(props: {
  viewer: Viewer;
  filter: ListFilter;
  setFilter: (f: ListFilter) => void;
  live: LiveFeed;
  /** Bumped when live events may have been missed (reconnect) or a job was created: refetch. */
  refreshKey: number;
}) {
  const { viewer, filter, setFilter, live } = props;
  const allUsers = viewer.role === "ADMIN" && filter.allUsers;
  const states = useMemo(() => JOB_STATES.filter((s) => filter.states.includes(s)), [filter.states]);
  const [result, reexecute] = useQuery<{ jobs: { totalCount: number; edges: { node: JobSummary }[] } }>({
    query: JOBS_QUERY,
    variables: { states, allUsers: allUsers || undefined, last: PAGE },
    pause: states.length === 0,
  });

  const firstKey = useRef(props.refreshKey);
  useEffect(() => {
    if (props.refreshKey !== firstKey.current) reexecute({ requestPolicy: "network-only" });
  }, [props.refreshKey, reexecute]);

  const rows = useMemo(() => {
    const byId = new Map<string, JobSummary>();
    for (const e of result.data?.jobs.edges ?? []) byId.set(e.node.id, e.node);
    // Jobs seen live: newer versions of listed ones, and ones the list does not have yet (created
    // since, or moved into the selected states), as long as they belong to this view.
    for (const [id, j] of live.jobs) {
      if (byId.has(id) || allUsers || j.owner === viewer.user) byId.set(id, newer(byId.get(id), j));
    }
    return [...byId.values()]
      .map((j) => withProgress(j, live.progress.get(j.id)))
      .filter((j) => filter.states.includes(j.state) && filter.priorities.includes(j.priority))
      .sort((a, b) => Date.parse(b.times.createdAt) - Date.parse(a.times.createdAt) || (a.id < b.id ? 1 : -1));
  }, [result.data, live.jobs, live.progress, filter.states, filter.priorities, allUsers, viewer.user]);

  const toggleState = (s: JobState) =>
    setFilter({ ...filter, states: filter.states.includes(s) ? filter.states.filter((x) => x !== s) : [...filter.states, s] });
  const togglePriority = (p: Priority) =>
    setFilter({ ...filter, priorities: filter.priorities.includes(p) ? filter.priorities.filter((x) => x !== p) : [...filter.priorities, p] });

  const total = result.data?.jobs.totalCount;
  return (
    <section>
      <div className="filters" data-testid="filters">
        <fieldset>
          <legend>State</legend>
          <div className="chips">
            {JOB_STATES.map((s) => (
              <label key={s} className={`chip state-${s.toLowerCase()}${filter.states.includes(s) ? " on" : ""}`}>
                <input type="checkbox" data-testid={`filter-state-${s}`} checked={filter.states.includes(s)} onChange={() => toggleState(s)} />
                {humanState(s)}
              </label>
            ))}
          </div>
          <div className="quick">
            <button type="button" className="link" data-testid="filter-unfinished" onClick={() => setFilter({ ...filter, states: UNFINISHED_STATES })}>
              unfinished
            </button>
            <button type="button" className="link" data-testid="filter-all-states" onClick={() => setFilter({ ...filter, states: [...JOB_STATES] })}>
              all states
            </button>
          </div>
        </fieldset>
        <fieldset>
          <legend>Priority</legend>
          <div className="chips">
            {PRIORITIES.map((p) => (
              <label key={p} className={`chip${filter.priorities.includes(p) ? " on" : ""}`}>
                <input type="checkbox" data-testid={`filter-priority-${p}`} checked={filter.priorities.includes(p)} onChange={() => togglePriority(p)} />
                {p.toLowerCase()}
              </label>
            ))}
          </div>
        </fieldset>
        {viewer.role === "ADMIN" ? (
          <fieldset>
            <legend>Owner</legend>
            <label className={`chip${filter.allUsers ? " on" : ""}`}>
              <input type="checkbox" data-testid="filter-all-users" checked={filter.allUsers} onChange={() => setFilter({ ...filter, allUsers: !filter.allUsers })} />
              all users
            </label>
          </fieldset>
        ) : null}
      </div>

      {result.error ? (
        <div className="banner error" role="alert" data-testid="list-error">
          Could not load the jobs: {describeError(result.error)}
        </div>
      ) : null}
      {live.error ? (
        <div className="banner warn" role="status">
          Live updates: {live.error}
        </div>
      ) : null}

      <div className="summary muted" data-testid="list-summary">
        {states.length === 0
          ? "Pick at least one state."
          : result.fetching && !result.data
            ? "Loading…"
            : `${rows.length} shown${total !== undefined ? ` · ${total} in the selected states${total > PAGE ? ` (the newest ${PAGE} loaded)` : ""}` : ""}`}
      </div>

      <table className="jobs" data-testid="job-table">
        <thead>
          <tr>
            <th>Job</th>
            {allUsers ? <th>Owner</th> : null}
            <th>State</th>
            <th>Priority</th>
            <th className="col-progress">Progress</th>
            <th>Files</th>
            <th>Error</th>
            <th>Modified</th>
            <th>Actions</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((j) => (
            <JobRow key={j.id} job={j} showOwner={allUsers} rate={j.state === "TRANSFERRING" ? (live.progress.get(j.id)?.bytesPerSecond ?? null) : null} onChanged={live.put} />
          ))}
          {rows.length === 0 && states.length > 0 && !result.fetching ? (
            <tr>
              <td colSpan={allUsers ? 9 : 8} className="empty" data-testid="no-jobs">
                No jobs in the selected states. Create one with the <code>createJob</code> mutation (see the README); it appears here at once.
              </td>
            </tr>
          ) : null}
        </tbody>
      </table>
    </section>
  );
}

function JobRow({ job, showOwner, rate, onChanged }: { job: JobSummary; showOwner: boolean; rate: number | null; onChanged: (j: JobSummary) => void }) {
  const href = `#/jobs/${encodeURIComponent(job.id)}`;
  return (
    <tr data-testid={`job-row-${job.id}`} data-state={job.state} className={`row-${job.state.toLowerCase()}`}>
      <td className="name">
        <a href={href} data-testid={`job-link-${job.id}`}>
          {job.displayName || <em>(no name)</em>}
        </a>
      </td>
      {showOwner ? <td>{job.owner}</td> : null}
      <td>
        <StateBadge state={job.state} testId={`state-${job.id}`} />
      </td>
      <td>
        <span className={`priority prio-${job.priority.toLowerCase()}`} data-testid={`priority-${job.id}`} data-order={BY_PRIORITY[job.priority]}>
          {job.priority.toLowerCase()}
        </span>
      </td>
      <td className="col-progress">
        <ProgressBar transferred={job.progress.bytesTransferred} total={job.progress.bytesTotal} rate={rate} testId={`progress-${job.id}`} compact />
      </td>
      <td className="num" data-testid={`files-${job.id}`}>
        {job.progress.filesTransferred}/{job.progress.filesTotal}
      </td>
      <td>
        {job.error ? (
          <span className="error-code" title={`${job.error.context}: ${job.error.message}`} data-testid={`error-${job.id}`}>
            {job.error.code}
          </span>
        ) : (
          <span className="muted">–</span>
        )}
      </td>
      <td className="time" title={job.times.modifiedAt}>
        {formatTime(job.times.modifiedAt)}
      </td>
      <td>
        <JobActions job={job} onDone={onChanged} />
      </td>
    </tr>
  );
}

