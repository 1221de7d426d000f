// Summarises V8 .cpuprofile files (node --cpu-prof; see BENCH_PROFILE in bench/run.ts): where the
// samples fell, by self time, per function and per module (a package under node_modules, a file of
// src/, node internals), plus idle, GC and "(program)" (native code outside JS). When the directory
// holds windows.jsonl (written by the bench), only the samples taken inside the measured intervals
// of that process are counted: start-up and set-up are left out.
//
//   node --import tsx bench/cpuprofile.ts <dir | file.cpuprofile> [top=25]
import fs from "node:fs";
import path from "node:path";
import { HAUL_ROOT, REPO_ROOT } from "./lib.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}
export interface Window {
  pid: number;
  label: string;
  startUs: number;
  endUs: number;
}

function moduleOf(url: string, fn: string): string {
  if (!url) return fn.startsWith("(") ? fn : "(native)";
  const u = url.replace(/^file:\/\//, "");
  const nm = u.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = u.slice(nm + "node_modules/".length).split("/");
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (u.startsWith("node:")) return u.startsWith("node:internal") ? "node:internal" : u;
  for (const root of [HAUL_ROOT, REPO_ROOT]) if (u.startsWith(root + "/")) return path.relative(root, u);
  return u.startsWith("wasm://") ? "(wasm)" : u;
}

/** The pid in a profile's file name, CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile. */
const pidOf = (file: string) => Number(path.basename(file).split(".")[3]);
const threadOf = (file: string) => Number(path.basename(file).split(".")[4]);

export function summarise(file: string, top = 25, windows: Window[] = []): string {
  const p = JSON.parse(fs.readFileSync(file, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const inWindow = (t: number) => windows.length === 0 || windows.some((w) => t >= w.startUs && t <= w.endUs);
  const self = new Map<number, number>();
  let t = p.startTime;
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (!inWindow(t)) continue;
    total += dt;
    self.set(p.samples[i]!, (self.get(p.samples[i]!) ?? 0) + dt);
  }
  const fns = new Map<string, number>();
  const mods = new Map<string, number>();
  for (const [id, us] of self) {
    const cf = byId.get(id)!.callFrame;
    const mod = moduleOf(cf.url, cf.functionName);
    const name = `${cf.functionName || "(anonymous)"} ${cf.url ? `${mod}:${cf.lineNumber + 1}` : ""}`.trim();
    fns.set(name, (fns.get(name) ?? 0) + us);
    mods.set(mod, (mods.get(mod) ?? 0) + us);
  }
  const busy = total - (mods.get("(idle)") ?? 0);
  const pct = (us: number) => `${((us / Math.max(1, total)) * 100).toFixed(1).padStart(5)}%`;
  const ms = (us: number) => `${(us / 1000).toFixed(0).padStart(7)} ms`;
  const scope = windows.length ? `inside ${windows.length} measured window(s): ${windows.map((w) => w.label).join("; ")}` : "whole process life";
  return [
    `${path.basename(file)} (pid ${pidOf(file)}), ${scope}`,
    `${(total / 1e6).toFixed(2)} s sampled, main thread busy ${(busy / 1e6).toFixed(2)} s (${((busy / Math.max(1, total)) * 100).toFixed(0)}%)`,
    "",
    "by module (self time):",
    ...[...mods.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([m, us]) => `  ${ms(us)} ${pct(us)}  ${m}`),
    "",
    "by function (self time):",
    ...[...fns.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([f, us]) => `  ${ms(us)} ${pct(us)}  ${f}`),
  ].join("\n");
}

/** Every main-thread profile of a directory, each restricted to its process's measured windows. */
export function summariseDir(dir: string, top = 25): string {
  const wfile = path.join(dir, "windows.jsonl");
  const windows: Window[] = fs.existsSync(wfile)
    ? fs.readFileSync(wfile, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Window)
    : [];
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".cpuprofile"))
    .map((f) => path.join(dir, f))
    .filter((f) => threadOf(f) === 0) // thread 1 is tsx's module loader
    .sort();
  return files.map((f) => summarise(f, top, windows.filter((w) => w.pid === pidOf(f)))).join("\n\n");
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(REPO_ROOT, "bench/cpuprofile.ts")) {
  const target = process.argv[2];
  if (!target) {
    console.error("usage: node --import tsx bench/cpuprofile.ts <dir | file.cpuprofile> [top]");
    process.exit(2);
  }
  const top = Number(process.argv[3] ?? 25);
  console.log(fs.statSync(target).isDirectory() ? summariseDir(target, top) : summarise(target, top));
}
