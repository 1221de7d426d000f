// The GraphQL side of the dashboard: the urql client (HTTP for queries and mutations with the bearer
// token, graphql-ws for subscriptions with the token in connection_init), the documents, and the
// types of what they return.
import { Client, cacheExchange, fetchExchange, mapExchange, subscriptionExchange, type CombinedError } from "urql";
import { createClient as createWsClient, type Client as WsClient } from "graphql-ws";

export const JOB_STATES = [
  "QUEUED",
  "CONNECTING",
  "TRANSFERRING",
  "SUSPENDED",
  "TRANSIENT_ERROR",
  "ERROR",
  "TRANSFERRED",
  "ACKNOWLEDGED",
  "CANCELLED",
] as const;
export type JobState = (typeof JOB_STATES)[number];
/** What the API lists when no states are named (BITS leaves finished jobs out). */
export const UNFINISHED_STATES: JobState[] = JOB_STATES.filter((s) => s !== "ACKNOWLEDGED" && s !== "CANCELLED");
export const FINAL_STATES: ReadonlySet<JobState> = new Set(["ACKNOWLEDGED", "CANCELLED"]);

export const PRIORITIES = ["FOREGROUND", "HIGH", "NORMAL", "LOW"] as const;
export type Priority = (typeof PRIORITIES)[number];

export interface JobErrorInfo {
  code: string;
  context: string;
  message: string;
  httpStatus: number | null;
  file: { id: string; localPath: string; remoteUrl: string } | null;
}

export interface JobProgress {
  bytesTotal: string | null;
  bytesTransferred: string;
  filesTotal: number;
  filesTransferred: number;
}

export interface JobSummary {
  id: string;
  displayName: string;
  state: JobState;
  priority: Priority;
  owner: string;
  type: string;
  errorCount: number;
  error: JobErrorInfo | null;
  progress: JobProgress;
  times: { createdAt: string; modifiedAt: string; transferCompletedAt: string | null };
}

export interface FileInfo {
  id: string;
  position: number;
  remoteUrl: string;
  localPath: string;
  bytesTotal: string | null;
  bytesTransferred: string;
  transferred: boolean;
  completed: boolean;
  sha256: string | null;
}

export interface JobDetail extends JobSummary {
  description: string | null;
  minimumRetryDelay: number;
  noProgressTimeout: number;
  maximumDownloadTime: number;
  maxBytesPerSecond: string | null;
  retryAt: string | null;
  hasCredentials: boolean;
  httpHeaderNames: string[];
  files: { totalCount: number; edges: { node: FileInfo }[] };
}

export interface StateChange {
  cursor: string;
  at: string;
  kind: string;
  previousState: JobState | null;
  state: JobState;
  actor: string | null;
  error: { code: string; message: string } | null;
  job: JobSummary;
}

export interface ProgressUpdate {
  jobId: string;
  state: JobState;
  bytesTransferred: string;
  bytesTotal: string | null;
  filesTransferred: number;
  filesTotal: number;
  bytesPerSecond: number;
  at: string;
}

export interface Viewer {
  user: string;
  role: "ADMIN" | "USER";
}

const JOB_SUMMARY = `
  id displayName state priority owner type errorCount
  error { code context message httpStatus file { id localPath remoteUrl } }
  progress { bytesTotal bytesTransferred filesTotal filesTransferred }
  times { createdAt modifiedAt transferCompletedAt }
`;

export const VIEWER_QUERY = `query Viewer { viewer { user role } }`;

/** The newest jobs first page (`last`), in the states asked for. */
export const JOBS_QUERY = `
  query Jobs($states: [JobState!], $allUsers: Boolean, $last: Int) {
    jobs(filter: { states: $states, allUsers: $allUsers }, last: $last) {
      totalCount
      edges { node { ${JOB_SUMMARY} } }
    }
  }
`;

export const JOB_QUERY = `
  query Job($id: ID!) {
    job(id: $id) {
      ${JOB_SUMMARY}
      description minimumRetryDelay noProgressTimeout maximumDownloadTime maxBytesPerSecond retryAt
      hasCredentials httpHeaderNames
      files(first: 200) {
        totalCount
        edges { node { id position remoteUrl localPath bytesTotal bytesTransferred transferred completed sha256 } }
      }
    }
  }
`;

export const STATE_CHANGES_SUBSCRIPTION = `
  subscription StateChanges($jobId: ID, $after: String) {
    jobStateChanged(jobId: $jobId, after: $after) {
      cursor at kind previousState state actor
      error { code message }
      job { ${JOB_SUMMARY} }
    }
  }
`;

export const PROGRESS_SUBSCRIPTION = `
  subscription Progress($jobId: ID) {
    jobProgress(jobId: $jobId) { jobId state bytesTransferred bytesTotal filesTransferred filesTotal bytesPerSecond at }
  }
`;

export type JobAction = "suspendJob" | "resumeJob" | "completeJob" | "cancelJob";

export function actionMutation(action: JobAction): string {
  return `mutation Act($id: ID!) { ${action}(id: $id) { warnings job { ${JOB_SUMMARY} } } }`;
}

/** "message (CODE)" for every error of a failed operation. */
export function describeError(error: CombinedError): string {
  if (error.graphQLErrors.length) {
    return error.graphQLErrors
      .map((e) => {
        const code = e.extensions?.code;
        return typeof code === "string" ? `${e.message} (${code})` : e.message;
      })
      .join("; ");
  }
  if (error.networkError) return `network error: ${error.networkError.message}`;
  return error.message;
}

export function isUnauthenticated(error: CombinedError | undefined): boolean {
  if (!error) return false;
  const res = error.response as { status?: number } | undefined;
  return res?.status === 401 || error.graphQLErrors.some((e) => e.extensions?.code === "UNAUTHENTICATED");
}

export interface ClientHooks {
  /** The token was refused (HTTP 401, UNAUTHENTICATED, or the WebSocket closed as revoked). */
  onUnauthenticated(): void;
  /** The WebSocket came back after a drop: live events may have been missed. */
  onReconnected(): void;
  /** The WebSocket's state, for the header's indicator. */
  onSocketState(state: "connecting" | "live" | "down"): void;
}

export function makeClient(token: string, hooks: ClientHooks): { client: Client; dispose(): void } {
  const wsUrl = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/graphql`;
  const ws: WsClient = createWsClient({
    url: wsUrl,
    connectionParams: () => ({ authorization: `Bearer ${token}` }),
    lazy: true,
    lazyCloseTimeout: 3000,
    keepAlive: 20_000,
    retryAttempts: Number.MAX_SAFE_INTEGER,
    // 1 s, 2 s, 4 s, ... capped at 15 s, with jitter.
    retryWait: (retries) => new Promise((r) => setTimeout(r, Math.min(1000 * 2 ** retries, 15_000) + Math.random() * 500)),
    shouldRetry: (e) => !(isCloseEvent(e) && e.code === 4401),
    on: {
      connecting: () => hooks.onSocketState("connecting"),
      connected: (_socket, _payload, wasRetry) => {
        hooks.onSocketState("live");
        if (wasRetry) hooks.onReconnected();
      },
      closed: (e) => {
        hooks.onSocketState("down");
        if (isCloseEvent(e) && e.code === 4401) hooks.onUnauthenticated();
      },
    },
  });
  const client = new Client({
    url: `${location.origin}/graphql`,
    fetchOptions: () => ({ headers: { authorization: `Bearer ${token}` } }),
    requestPolicy: "cache-and-network",
    exchanges: [
      mapExchange({
        onError(error) {
          if (isUnauthenticated(error)) hooks.onUnauthenticated();
        },
      }),
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query ?? "" };
          return {
            subscribe(sink) {
              const unsubscribe = ws.subscribe(input, sink);
              return { unsubscribe };
            },
          };
        },
      }),
    ],
  });
  return { client, dispose: () => void ws.dispose() };
}

function isCloseEvent(e: unknown): e is { code: number; reason: string } {
  return typeof e === "object" && e !== null && "code" in e && typeof (e as { code: unknown }).code === "number";
}
