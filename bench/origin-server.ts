// The benchmark origin, in a process of its own so that serving bytes never competes with haul (or
// the bench driver) for one event loop. It wraps test/helpers/origin.ts (generated, deterministic
// content; Range/ETag like a real server) and is driven over stdin/stdout, one JSON line each way:
//
//   parent -> child, first line:  {"files":[{"path":"/a.bin","size":1048576}], "series":[{"prefix":"/s/f","count":2000,"size":16384}]}
//   child -> parent:              {"url":"http://127.0.0.1:<port>"}
//   parent -> child:              {"sha256":["/a.bin", ...]}   ->  {"sha256":{"/a.bin":"<hex>", ...}}
//   parent -> child:              {"served":null}              ->  {"served":<file-content bytes served so far>}
//
// It exits when stdin ends (the parent closed it, or died) or on SIGTERM.
import readline from "node:readline";
import { startOrigin, type Origin, type OriginFile } from "../test/helpers/origin.js";
import { seriesPaths } from "./lib.js";

interface Spec {
  files?: { path: string; size: number }[];
  series?: { prefix: string; count: number; size: number }[];
}

async function main(): Promise<void> {
  let origin: Origin | null = null;
  let closing = false;
  const close = async () => {
    if (closing) return;
    closing = true;
    await origin?.close().catch(() => {});
    process.exit(0);
  };
  process.on("SIGTERM", () => void close());
  process.on("SIGINT", () => void close());

  const rl = readline.createInterface({ input: process.stdin });
  rl.on("close", () => void close());
  const send = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);

  for await (const line of rl) {
    if (!line.trim()) continue;
    const msg = JSON.parse(line) as Record<string, unknown>;
    if (!origin) {
      const spec = msg as Spec;
      const files: OriginFile[] = [...(spec.files ?? [])];
      for (const s of spec.series ?? []) for (const p of seriesPaths(s.prefix, s.count)) files.push({ path: p, size: s.size });
      origin = await startOrigin(files);
      send({ url: origin.url });
    } else if (Array.isArray(msg.sha256)) {
      const out: Record<string, string> = {};
      for (const p of msg.sha256 as string[]) out[p] = origin.sha256Of(p);
      send({ sha256: out });
    } else if ("served" in msg) {
      send({ served: origin.bytesServed() });
    } else {
      send({ error: `unknown command: ${line.slice(0, 200)}` });
    }
  }
}

main().catch((err) => {
  console.error("bench origin failed:", err);
  process.exit(1);
});
