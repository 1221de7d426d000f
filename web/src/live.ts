// Live data: the newest known version of each job, from queries, subscription events and mutation
// payloads, and the latest progress figures. Versions are ordered by the job's modifiedAt (the
// server's clock, written with every state change and progress write), so an event or a progress
// message that arrives late never rolls a row back.
import { useCallback, useEffect, useRef, useState } from "react";
import { useClient } from "urql";
import { PROGRESS_SUBSCRIPTION, STATE_CHANGES_SUBSCRIPTION, describeError, type JobSummary, type ProgressUpdate, type StateChange } from "./api";

const ms = (iso: string) => Date.parse(iso);

/** The newer of two versions of a job (ties: b). */
export function newer<T extends JobSummary>(a: T | undefined, b: T): T;
export function newer<T extends JobSummary>(a: T | undefined, b: T | undefined): T | undefined;
export function newer<T extends JobSummary>(a: T | undefined, b: T | undefined): T | undefined {
  if (!a) return b;
  if (!b) return a;
  return ms(a.times.modifiedAt) > ms(b.times.modifiedAt) ? a : b;
}

/** The job with the progress message applied when the message is not older than the job. */
export function withProgress<T extends JobSummary>(job: T, p: ProgressUpdate | undefined): T {
  if (!p || ms(p.at) < ms(job.times.modifiedAt)) return job;
  return {
    ...job,
    times: { ...job.times, modifiedAt: p.at },
    progress: {
      bytesTransferred: p.bytesTransferred,
      bytesTotal: p.bytesTotal,
      filesTransferred: p.filesTransferred,
      filesTotal: p.filesTotal,
    },
  };
}

export interface LiveFeed {
  /** Newest job versions seen on the subscription (or from mutations), by id. */
  jobs: ReadonlyMap<string, JobSummary>;
  progress: ReadonlyMap<string, ProgressUpdate>;
  /** Record a version from elsewhere (a mutation's payload). */
  put(job: JobSummary): void;
  error: string | null;
}

/**
 * Subscribes to every state change (jobStateChanged, no jobId) and all progress (jobProgress, no
 * jobId) the caller may see. `onEvent` is told of each state change (e.g. to refetch on CREATED).
 */
export function useLiveFeed(onEvent?: (e: StateChange) => void): LiveFeed {
  const client = useClient();
  const [jobs, setJobs] = useState<ReadonlyMap<string, JobSummary>>(new Map());
  const [progress, setProgress] = useState<ReadonlyMap<string, ProgressUpdate>>(new Map());
  const [error, setError] = useState<string | null>(null);
  const onEventRef = useRef(onEvent);
  onEventRef.current = onEvent;

  const put = useCallback((job: JobSummary) => {
    setJobs((m) => {
      const cur = m.get(job.id);
      const next = newer(cur, job);
      if (next === cur) return m;
      const copy = new Map(m);
      copy.set(job.id, next);
      return copy;
    });
  }, []);

  useEffect(() => {
    const states = client.subscription<{ jobStateChanged: StateChange }>(STATE_CHANGES_SUBSCRIPTION, {}).subscribe((r) => {
      if (r.error) setError(describeError(r.error));
      const e = r.data?.jobStateChanged;
      if (!e) return;
      setError(null);
      put(e.job);
      onEventRef.current?.(e);
    });
    // Progress messages come at most every 500 ms per job: batch them into one render per frame.
    let pending = new Map<string, ProgressUpdate>();
    let frame = 0;
    const flush = () => {
      frame = 0;
      const batch = pending;
      pending = new Map();
      setProgress((m) => {
        const copy = new Map(m);
        for (const [id, p] of batch) {
          const cur = copy.get(id);
          if (!cur || ms(p.at) >= ms(cur.at)) copy.set(id, p);
        }
        return copy;
      });
    };
    const prog = client.subscription<{ jobProgress: ProgressUpdate }>(PROGRESS_SUBSCRIPTION, {}).subscribe((r) => {
      if (r.error) setError(describeError(r.error));
      const p = r.data?.jobProgress;
      if (!p) return;
      pending.set(p.jobId, p);
      if (!frame) frame = requestAnimationFrame(flush);
    });
    return () => {
      states.unsubscribe();
      prog.unsubscribe();
      if (frame) cancelAnimationFrame(frame);
    };
  }, [client, put]);

  return { jobs, progress, put, error };
}
