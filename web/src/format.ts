// Display helpers. Byte counts arrive as decimal strings (BigInt in the API) and stay exact here.

const UNITS = ["B", "KB", "MB", "GB", "TB", "PB"];

export function formatBytes(value: string | null | undefined): string {
  if (value === null || value === undefined) return "?";
  let n: bigint;
  try {
    n = BigInt(value);
  } catch {
    return value;
  }
  if (n < 1000n) return `${n} B`;
  let unit = 0;
  // Scale with BigInt until the number fits comfortably in a double, then finish in floating point.
  let scaled = n;
  while (scaled >= 1_000_000n && unit < UNITS.length - 2) {
    scaled /= 1000n;
    unit++;
  }
  let x = Number(scaled);
  while (x >= 1000 && unit < UNITS.length - 1) {
    x /= 1000;
    unit++;
  }
  return `${x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)} ${UNITS[unit]}`;
}

export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(String(Math.max(0, Math.round(bytesPerSecond))))}/s`;
}

/** Percent done, 0..100 with one decimal; null when the total is unknown. */
export function percentOf(transferred: string, total: string | null): number | null {
  if (total === null) return null;
  const t = BigInt(total);
  const d = BigInt(transferred);
  if (t === 0n) return 100;
  const tenths = (d * 1000n) / t;
  return Math.min(100, Number(tenths) / 10);
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const now = new Date();
  const sameDay = d.toDateString() === now.toDateString();
  return sameDay
    ? d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" })
    : d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

export function formatSeconds(s: number): string {
  if (s % 86400 === 0 && s >= 86400) return `${s / 86400} d`;
  if (s % 3600 === 0 && s >= 3600) return `${s / 3600} h`;
  if (s % 60 === 0 && s >= 60) return `${s / 60} min`;
  return `${s} s`;
}

/** "TRANSIENT_ERROR" -> "transient error" */
export function humanState(state: string): string {
  return state.toLowerCase().replace(/_/g, " ");
}
