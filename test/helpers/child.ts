// haul as a child process (`node --import tsx src/main.ts`) for crash tests: the caller chooses the
// database, the storage root and any HAUL_* setting, and can kill it with any signal (SIGKILL for a
// crash). Every wait is bounded; `stop()` always ends the process (SIGTERM, then SIGKILL) and is safe
// to call more than once, also after a kill.
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { REPO_ROOT, freePort, waitFor, withTimeout } from "./subscribe.js";
import { ensureTestTokens, setDefaultToken } from "./auth.js";

export interface HaulChild {
  child: ChildProcess;
  pid: number;
  url: string;
  graphqlUrl: string;
  /** stdout + stderr so far (for failure messages). */
  output(): string;
  /** null while running; how it ended otherwise. */
  exited(): { code: number | null; signal: NodeJS.Signals | null } | null;
  /** Sends `signal` and waits (bounded) until the process is gone. */
  kill(signal?: NodeJS.Signals, ms?: number): Promise<void>;
  /** SIGTERM, SIGKILL after `graceMs`; removes the child's data directory. */
  stop(graceMs?: number): Promise<void>;
}

export interface HaulChildOptions {
  databaseUrl: string;
  storageRoot: string;
  /** Extra environment (HAUL_LEASE_SECONDS, HAUL_WORKER, ...); wins over the defaults below. */
  env?: Record<string, string>;
  startupMs?: number;
}

/** Starts haul on `databaseUrl` (already migrated) and waits until /healthz answers. */
export async function startHaulChild(opts: HaulChildOptions): Promise<HaulChild> {
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "haul-child-"));
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: REPO_ROOT,
    env: {
      ...process.env,
      DATABASE_URL: opts.databaseUrl,
      HOST: "127.0.0.1",
      PORT: String(port),
      HAUL_MIGRATE_ON_START: "false",
      HAUL_ALLOWED_NETWORKS: "127.0.0.0/8,::1/128",
      HAUL_WORKER: "true",
      HAUL_LOG_LEVEL: "warn",
      HAUL_DATA_DIR: dataDir,
      HAUL_STORAGE_ROOT: opts.storageRoot,
      ...opts.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += String(d)));
  child.stderr!.on("data", (d) => (out += String(d)));
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exitPromise = new Promise<void>((r) =>
    child.once("exit", (code, signal) => {
      exited = { code, signal };
      r();
    }),
  );
  // If the test process dies without stopping it, take the child with it.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  const url = `http://127.0.0.1:${port}`;

  const kill = async (signal: NodeJS.Signals = "SIGKILL", ms = 5_000) => {
    if (exited) return;
    child.kill(signal);
    await withTimeout(exitPromise, `child ${child.pid} to exit on ${signal}`, ms);
  };
  let stopped = false;
  const stop = async (graceMs = 5_000) => {
    if (stopped) return;
    stopped = true;
    process.off("exit", killOnExit);
    if (!exited) {
      const gone = await kill("SIGTERM", graceMs).then(
        () => true,
        () => false,
      );
      if (!gone) await kill("SIGKILL").catch(() => {});
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  };

  try {
    await waitFor(
      async () => {
        if (exited) throw new Error(`haul child exited early (${JSON.stringify(exited)}): ${out}`);
        try {
          const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
          return res.ok;
        } catch {
          return false;
        }
      },
      `haul child /healthz on ${url}`,
      { ms: opts.startupMs ?? 30_000, intervalMs: 50, detail: () => out.slice(-2000) },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  setDefaultToken(url, (await ensureTestTokens(opts.databaseUrl)).userToken);
  return {
    child,
    pid: child.pid!,
    url,
    graphqlUrl: `${url}/graphql`,
    output: () => out,
    exited: () => exited,
    kill,
    stop,
  };
}
