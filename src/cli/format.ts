// Human output: tables, byte counts, times, durations and the progress bar. Machine output is
// `--json` (the GraphQL data as the API returned it), printed by printJson.

/** Writes `data` as pretty JSON on stdout: stable, machine-readable. */
export function printJson(data: unknown): void {
  process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
}

/** A one-line JSON value (for streams: one event per line). */
export function printJsonLine(data: unknown): void {
  process.stdout.write(`${JSON.stringify(data)}\n`);
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];

/** 1536 -> "1.5 KiB"; a BigInt decimal string is accepted (exact input, rounded output). */
export function formatBytes(n: string | number | bigint | null | undefined): string {
  if (n === null || n === undefined) return "?";
  const v = typeof n === "number" ? n : Number(BigInt(n));
  if (!Number.isFinite(v)) return String(n);
  if (v < 1024) return `${v} B`;
  let x = v;
  let i = 0;
  while (x >= 1024 && i < UNITS.length - 1) {
    x /= 1024;
    i++;
  }
  return `${x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)} ${UNITS[i]}`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

/** Percent of transferred/total, or null when the total is unknown (or 0 bytes: then 100). */
export function percentOf(transferred: string | null | undefined, total: string | null | undefined): number | null {
  if (total === null || total === undefined || transferred === null || transferred === undefined) return null;
  const t = BigInt(total);
  if (t === 0n) return 100;
  return Number((BigInt(transferred) * 10000n) / t) / 100;
}

/** "1.2 MiB / 4.0 MiB (30%)", or "1.2 MiB / ?" while the size is unknown. */
export function formatProgress(p: { bytesTransferred: string; bytesTotal: string | null }): string {
  const pct = percentOf(p.bytesTransferred, p.bytesTotal);
  return `${formatBytes(p.bytesTransferred)} / ${formatBytes(p.bytesTotal)}${pct === null ? "" : ` (${Math.floor(pct)}%)`}`;
}

/** ISO 8601 from the API -> "2026-11-26 08:30:00Z" (UTC, to the second); "-" for null. */
export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "-";
  return iso.replace("T", " ").replace(/\.\d+Z$/, "Z");
}

/** 600 -> "10m", 1209600 -> "14d", 90 -> "1m30s", 0 -> "0s". */
export function formatDuration(seconds: number): string {
  if (seconds === 0) return "0s";
  const parts: string[] = [];
  let s = seconds;
  for (const [unit, size] of [
    ["d", 86400],
    ["h", 3600],
    ["m", 60],
    ["s", 1],
  ] as const) {
    if (s >= size) {
      parts.push(`${Math.floor(s / size)}${unit}`);
      s %= size;
    }
  }
  return parts.join("");
}

/** 75 -> "1:15", 3725 -> "1:02:05". */
export function formatClock(seconds: number): string {
  const t = Math.ceil(seconds);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = String(t % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

/** Left-aligned columns separated by two spaces; the header row first. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  return [line(headers), ...rows.map(line)].join("\n") + "\n";
}

/** "key: value" lines with the keys aligned. */
export function details(pairs: [string, string][]): string {
  const w = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(w + 1)} ${v}`).join("\n") + "\n";
}

export function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

// ---- progress bar ------------------------------------------------------------------------------

export interface ProgressFigures {
  state: string;
  bytesTransferred: string;
  bytesTotal: string | null;
  bytesPerSecond: number;
  filesTransferred: number;
  filesTotal: number;
}

/**
 * A live progress bar on stderr. On a terminal it redraws one line; otherwise (a pipe, a log file)
 * it prints a line whenever the whole percent or the state changes, at most once a second.
 */
export class ProgressBar {
  private readonly tty: boolean;
  private lastLine = "";
  private lastPrinted = 0;
  private lastKey = "";
  private drawn = false;

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {
    this.tty = !!out.isTTY;
  }

  render(p: ProgressFigures): void {
    const pct = percentOf(p.bytesTransferred, p.bytesTotal);
    const width = 24;
    const filled = pct === null ? 0 : Math.min(width, Math.round((pct / 100) * width));
    const bar = pct === null ? `[${"?".repeat(width)}]` : `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
    const pctText = pct === null ? "  ?%" : `${Math.floor(pct).toString().padStart(3)}%`;
    const files = p.filesTotal > 1 ? `  file ${Math.min(p.filesTransferred + 1, p.filesTotal)}/${p.filesTotal}` : "";
    let eta = "";
    if (p.bytesTotal !== null && p.bytesPerSecond > 0 && p.state === "TRANSFERRING") {
      const left = Number(BigInt(p.bytesTotal) - BigInt(p.bytesTransferred)) / p.bytesPerSecond;
      if (left > 0 && Number.isFinite(left)) eta = `  ETA ${formatClock(left)}`;
    }
    const line = `${bar} ${pctText}  ${formatBytes(p.bytesTransferred)} / ${formatBytes(p.bytesTotal)}  ${formatRate(p.bytesPerSecond)}${eta}${files}  ${p.state}`;
    if (this.tty) {
      if (line === this.lastLine) return;
      this.out.write(`\r\x1b[2K${line}`);
      this.drawn = true;
    } else {
      const key = `${pct === null ? p.bytesTransferred : Math.floor(pct)}:${p.state}`;
      const now = Date.now();
      if (key === this.lastKey || (now - this.lastPrinted < 1000 && p.state === this.lastState())) return;
      this.out.write(`${line}\n`);
      this.lastKey = key;
      this.lastPrinted = now;
    }
    this.lastLine = line;
  }

  private lastState(): string {
    return this.lastKey.split(":")[1] ?? "";
  }

  /** Ends the bar's line so that what follows starts on a fresh line. */
  finish(): void {
    if (this.tty && this.drawn) this.out.write("\n");
    this.drawn = false;
  }

  /** Prints a message above the bar (a state change, a warning) without breaking it. */
  note(message: string): void {
    if (this.tty && this.drawn) {
      this.out.write(`\r\x1b[2K${message}\n${this.lastLine}`);
    } else {
      this.out.write(`${message}\n`);
    }
  }
}
