// Small helpers for tests that drive jobs through the API.
import { ok, gql } from "./server.js";

export const JOB_STATUS = `id state errorCount retryAt error { code context message httpStatus file { id localPath } }
  progress { bytesTotal bytesTransferred filesTotal filesTransferred } times { transferCompletedAt }
  files { edges { node { id localPath bytesTotal bytesTransferred transferred completed } } }`;

export interface FileSpec {
  remoteUrl: string;
  localPath: string;
  sha256?: string;
}

export async function createJob(url: string, files: FileSpec[], extra: Record<string, unknown> = {}): Promise<string> {
  const r = await ok(url, `mutation($input: CreateJobInput!) { createJob(input: $input) { job { id } } }`, {
    input: { displayName: "test job", files, ...extra },
  });
  return r.createJob.job.id as string;
}

export async function act(url: string, mutation: "resumeJob" | "suspendJob" | "cancelJob" | "completeJob", id: string) {
  return gql(url, `mutation($id: ID!) { ${mutation}(id: $id) { job { id state } warnings } }`, { id });
}

export async function jobStatus(url: string, id: string): Promise<any> {
  return (await ok(url, `query($id: ID!) { job(id: $id) { ${JOB_STATUS} } }`, { id })).job;
}

/** Polls until the job is in one of `states`; fails with the last status after `ms`. */
export async function waitForState(url: string, id: string, states: string[], ms = 20_000): Promise<any> {
  const deadline = Date.now() + ms;
  let last: any;
  for (;;) {
    last = await jobStatus(url, id);
    if (states.includes(last.state)) return last;
    if (Date.now() > deadline) throw new Error(`job never reached ${states.join("|")}: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Polls until `pred(status)` holds. */
export async function waitFor(url: string, id: string, pred: (s: any) => boolean, what: string, ms = 20_000): Promise<any> {
  const deadline = Date.now() + ms;
  let last: any;
  for (;;) {
    last = await jobStatus(url, id);
    if (pred(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function uuidOf(globalId: string): string {
  return Buffer.from(globalId, "base64").toString().split(":")[1]!;
}
