// Diagnostic for the fan-out benchmark (bench/fanout.ts): WHAT each graphql-ws subscriber keeps on
// the server's V8 heap. Two heap snapshots of a server (haul: dist/main.js, HAUL_WORKER=off, on a
// fresh database; or the bare yoga + graphql-ws server of bench/fanout-bare.ts), one after a warm-up
// and one with N more subscribers (after a probe event reached all of them, full GC before each),
// compared by constructor: bytes and objects per subscriber.
//
//   node --import tsx bench/fanout-heap.ts [haul|bare] [N=1000] [top=30]
import path from "node:path";
import WebSocket from "ws";
import { BENCH_TOKEN, REPO_ROOT, createDatabase, ensureFreshHaulBuild, gql, runCleanups, sleep, startHaul } from "./lib.js";
import { SUBSCRIPTION, inspectorUrl, startBare, startLineChild } from "./fanout.js";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** A full-GC'd heap snapshot over the inspector, summed by "type:constructor": [bytes, count]. */
async function heapByConstructor(url: string): Promise<Map<string, [number, number]>> {
  const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1 << 30 });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  const chunks: string[] = [];
  let id = 0;
  const pending = new Map<number, () => void>();
  ws.on("message", (d: Buffer) => {
    const m = JSON.parse(d.toString()) as { id?: number; method?: string; params?: { chunk: string } };
    if (m.method === "HeapProfiler.addHeapSnapshotChunk") chunks.push(m.params!.chunk);
    else if (m.id !== undefined) pending.get(m.id)?.();
  });
  const call = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<void>((resolve) => {
      pending.set(++id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await call("HeapProfiler.collectGarbage");
  await call("HeapProfiler.collectGarbage");
  await call("HeapProfiler.takeHeapSnapshot", { reportProgress: false, captureNumericValue: false });
  ws.close();
  const snap = JSON.parse(chunks.join("")) as Snapshot;
  const f = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [iType, iName, iSize] = [f.indexOf("type"), f.indexOf("name"), f.indexOf("self_size")];
  const out = new Map<string, [number, number]>();
  for (let i = 0; i < snap.nodes.length; i += f.length) {
    const type = types[snap.nodes[i + iType]!]!;
    const name = type === "object" || type === "closure" || type === "native" ? snap.strings[snap.nodes[i + iName]!]! : "";
    const key = `${type}${name ? `: ${name.slice(0, 60)}` : ""}`;
    const e = out.get(key) ?? [0, 0];
    e[0] += snap.nodes[i + iSize]!;
    e[1] += 1;
    out.set(key, e);
  }
  return out;
}

async function main(): Promise<void> {
  const which = process.argv[2] === "bare" ? "bare" : "haul";
  const n = Number(process.argv[3] ?? 1000);
  const top = Number(process.argv[4] ?? 30);
  const load = startLineChild("load generator", ["--import", "tsx", path.join(REPO_ROOT, "bench/fanout-load.ts")]);
  let graphqlUrl: string;
  let inspector: string | null;
  let tokens: string[] = [];
  let transition: () => Promise<void>;
  if (which === "bare") {
    const b = await startBare({ full: false, profileDir: null, log: console.log });
    graphqlUrl = b.graphqlUrl;
    inspector = b.inspector;
    transition = () => b.transition().done;
  } else {
    ensureFreshHaulBuild(console.log);
    const db = await createDatabase();
    const h = await startHaul({ databaseUrl: db.url, env: { HAUL_WORKER: "off", NODE_OPTIONS: "--inspect=127.0.0.1:0" } });
    for (let i = 0; i < 50 && !inspectorUrl(h.output()); i++) await sleep(20);
    inspector = inspectorUrl(h.output());
    const { createApiToken } = await h.gql<{ createApiToken: { token: string } }>(
      `mutation($input: CreateApiTokenInput!) { createApiToken(input: $input) { token } }`,
      { input: { user: "heap-user", role: "USER" } },
    );
    tokens = [BENCH_TOKEN, createApiToken.token];
    const jobs: string[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await gql<{ createJob: { job: { id: string } } }>(
        h.graphqlUrl,
        `mutation($input: CreateJobInput!) { createJob(input: $input) { job { id } } }`,
        { input: { displayName: `heap ${i}`, files: [{ remoteUrl: `http://127.0.0.1:9/heap/${i}.bin`, localPath: `heap/${i}.bin` }] } },
        createApiToken.token,
      );
      jobs.push(r.createJob.job.id);
    }
    graphqlUrl = h.graphqlUrl;
    transition = () => h.gql(`mutation($id: ID!) { resumeJob(id: $id) { job { id } } }`, { id: jobs.shift() }).then(() => {});
  }
  if (!inspector) throw new Error("no inspector URL in the server's output");
  const connectAndProbe = async (count: number) => {
    const c = await load.ask({ op: "connect", kind: "ws", url: graphqlUrl, tokens, count, query: SUBSCRIPTION, concurrency: 100 });
    if (c.failed) throw new Error(`subscribers failed: ${c.firstError}`);
    await load.ask({ op: "phase", name: "probe" });
    for (let k = 0; k < 10; k++) {
      await transition();
      if ((await load.ask({ op: "wait", min: 1, timeoutMs: 3000 })).complete) return;
    }
    throw new Error("subscribers not receiving");
  };
  await connectAndProbe(20); // warm-up: these stay connected in both snapshots
  await sleep(500);
  const a = await heapByConstructor(inspector);
  await connectAndProbe(n);
  await sleep(500);
  const b = await heapByConstructor(inspector);
  const rows = [...b.entries()]
    .map(([k, [bytes, count]]) => {
      const [b0, c0] = a.get(k) ?? [0, 0];
      return { k, bytes: (bytes - b0) / n, count: (count - c0) / n };
    })
    .sort((x, y) => y.bytes - x.bytes);
  const total = rows.reduce((s, r) => s + r.bytes, 0);
  console.log(`${which}: V8 heap growth per graphql-ws subscriber with ${n} subscribers: ${total.toFixed(0)} B (self sizes; strings and code included)`);
  console.log("   bytes/sub  objects/sub  type: constructor");
  for (const r of rows.slice(0, top)) console.log(`${r.bytes.toFixed(0).padStart(12)} ${r.count.toFixed(2).padStart(12)}  ${r.k}`);
  await load.stop();
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => runCleanups());
