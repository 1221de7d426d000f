// Destination address policy: SSRF protection for the URLs haul fetches on behalf of users.
//
// haul refuses to connect to addresses that reach the host itself or the operator's internal
// networks, unless the operator allows them explicitly with HAUL_ALLOWED_NETWORKS (comma-separated
// CIDRs, e.g. "127.0.0.0/8,::1/128"; a bare address means /32 or /128).
//
// The check is made on the address actually connected to, never on the URL's host name:
// - names: `guardedLookup(policy)` is passed as the `lookup` option of node:http/https/net. Node
//   calls it for every connection (also after redirects, and for every address it tries with
//   autoSelectFamily), so a DNS answer that changes between checks (DNS rebinding) cannot slip
//   through: the addresses checked are the addresses handed to connect().
// - IP literals (http://127.0.0.1/, http://[::1]/): Node connects to these without calling
//   `lookup`, so the caller must check every URL it requests (the first and each redirect target)
//   with `literalRefusal(policy, url)`. The URL parser has already normalised odd IPv4 forms
//   (http://0x7f.1/, http://2130706433/, http://017700000001/ all have hostname 127.0.0.1).
//
// Refused ranges (category returned by `refusal`):
//
//   IPv4                 category      what
//   0.0.0.0/8            unspecified   "this network"; 0.0.0.0 connects to the local host
//   10.0.0.0/8           private       RFC 1918
//   100.64.0.0/10        cgnat         shared address space, RFC 6598
//   127.0.0.0/8          loopback
//   169.254.0.0/16       link-local    includes cloud metadata 169.254.169.254
//   172.16.0.0/12        private       RFC 1918
//   192.0.0.0/24         reserved      IETF protocol assignments, RFC 6890
//   192.168.0.0/16       private       RFC 1918
//   198.18.0.0/15        reserved      benchmarking, RFC 2544
//   224.0.0.0/4          multicast
//   240.0.0.0/4          reserved      future use, includes broadcast 255.255.255.255
//
//   IPv6                 category      what
//   ::/128               unspecified
//   ::1/128              loopback
//   ::/96 (other)        (IPv4 rules)  IPv4-compatible (deprecated): the embedded IPv4 address
//   ::ffff:0:0/96        (IPv4 rules)  IPv4-mapped: the embedded IPv4 address (this IS an IPv4
//                                      connection: ::ffff:127.0.0.1 == ::ffff:7f00:1 == 127.0.0.1)
//   64:ff9b::/96         (IPv4 rules)  NAT64 well-known prefix, RFC 6052: the embedded address
//   fc00::/7             private       unique local addresses (ULA)
//   fe80::/10            link-local
//   ff00::/8             multicast
//   2001:db8::/32        reserved      documentation
//   any address with a zone id (fe80::1%eth0) is refused as link-local at least: a zone only
//   makes sense for scoped addresses.
//
// Everything else (global unicast) is allowed. Anything that is not an IPv4 or IPv6 address
// (per node:net isIP, after stripping [brackets] and a %zone) is refused as "invalid".
//
// Allow-list: an address inside an allowed network is allowed whatever its category. IPv4 and
// IPv4-mapped IPv6 are the same destination, so they are matched both ways: 127.0.0.0/8 allows
// ::ffff:127.0.0.1, and ::ffff:127.0.0.0/104 allows 127.0.0.1. NAT64 and IPv4-compatible addresses
// reach a different host than their embedded IPv4 address, so only IPv6 entries match them
// (allow e.g. 64:ff9b::/96 explicitly). A zone id is ignored for matching. Host bits below the
// prefix are ignored ("10.1.2.3/8" is 10.0.0.0/8).
//
// Matching is done here on parsed bytes rather than with net.BlockList, whose treatment of
// IPv4-mapped addresses has changed between Node versions.
import dns from "node:dns";
import net from "node:net";

export type RefusalReason =
  | "loopback"
  | "private"
  | "link-local"
  | "cgnat"
  | "multicast"
  | "unspecified"
  | "reserved"
  | "invalid";

/** Error code of the error `guardedLookup` calls back with when every resolved address is refused. */
export const DESTINATION_NOT_ALLOWED = "EDESTINATION_NOT_ALLOWED";

/** A destination refused by the policy (`code` is always EDESTINATION_NOT_ALLOWED). */
export class DestinationNotAllowedError extends Error {
  override readonly name = "DestinationNotAllowedError";
  readonly code = DESTINATION_NOT_ALLOWED;

  constructor(
    /** the refused address (for a name: the first address it resolved to) */
    readonly address: string,
    readonly reason: string,
    /** the host name that was resolved, or the literal itself */
    readonly hostname: string = address,
  ) {
    super(
      hostname === address
        ? `destination ${address} is not allowed (${reason} address); see HAUL_ALLOWED_NETWORKS`
        : `destination ${hostname} resolves to ${address}, which is not allowed (${reason} address); see HAUL_ALLOWED_NETWORKS`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Parsing

interface Parsed {
  /** 4 bytes for IPv4, 16 for IPv6 */
  bytes: Uint8Array;
  /** whether a %zone was present (IPv6 only) */
  zoned: boolean;
}

function parseIPv4(s: string): Uint8Array | null {
  if (net.isIPv4(s) === false) return null;
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const n = Number(parts[i]);
    if (!Number.isInteger(n) || n < 0 || n > 255) return null;
    out[i] = n;
  }
  return out;
}

/** `s` without zone and brackets, already accepted by net.isIPv6. */
function parseIPv6(s: string): Uint8Array | null {
  let text = s;
  let tail: Uint8Array | null = null;
  const lastColon = text.lastIndexOf(":");
  if (text.indexOf(".", lastColon) !== -1) {
    tail = parseIPv4(text.slice(lastColon + 1));
    if (tail === null) return null;
    // keep the colon(s) before the IPv4 part; "::1.2.3.4" -> "::" + two groups
    text = text.slice(0, lastColon + 1) + "0:0";
  }
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groupsOf = (h: string): string[] => (h === "" ? [] : h.split(":"));
  const head = groupsOf(halves[0] ?? "");
  const rest = halves.length === 2 ? groupsOf(halves[1] ?? "") : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill("0"), ...rest];
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    const g = groups[i] ?? "";
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  }
  if (tail !== null) out.set(tail, 12);
  return out;
}

function stripBrackets(s: string): string {
  return s.length >= 2 && s.startsWith("[") && s.endsWith("]") ? s.slice(1, -1) : s;
}

function parseAddress(input: string): Parsed | null {
  const s = stripBrackets(input.trim());
  const v4 = parseIPv4(s);
  if (v4 !== null) return { bytes: v4, zoned: false };
  if (net.isIPv6(s) === false) return null;
  const pct = s.indexOf("%");
  const zoned = pct !== -1;
  const bytes = parseIPv6(zoned ? s.slice(0, pct) : s);
  return bytes === null ? null : { bytes, zoned };
}

// ---------------------------------------------------------------------------------------------
// Prefix arithmetic

function prefixMatches(addr: Uint8Array, net: Uint8Array, bits: number): boolean {
  if (addr.length !== net.length) return false;
  const whole = bits >> 3;
  for (let i = 0; i < whole; i++) if (addr[i] !== net[i]) return false;
  const rem = bits & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return ((addr[whole] ?? 0) & mask) === ((net[whole] ?? 0) & mask);
}

function maskTo(bytes: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    out[i] = (bytes[i] ?? 0) & ((0xff << (8 - keep)) & 0xff);
  }
  return out;
}

interface Range {
  bytes: Uint8Array;
  bits: number;
}

function range(cidr: string): Range {
  const slash = cidr.indexOf("/");
  const parsed = parseAddress(cidr.slice(0, slash));
  if (parsed === null) throw new Error(`internal: bad range ${cidr}`);
  return { bytes: parsed.bytes, bits: Number(cidr.slice(slash + 1)) };
}

const IPV4_RANGES: readonly (readonly [Range, RefusalReason])[] = [
  [range("0.0.0.0/8"), "unspecified"],
  [range("10.0.0.0/8"), "private"],
  [range("100.64.0.0/10"), "cgnat"],
  [range("127.0.0.0/8"), "loopback"],
  [range("169.254.0.0/16"), "link-local"],
  [range("172.16.0.0/12"), "private"],
  [range("192.0.0.0/24"), "reserved"],
  [range("192.168.0.0/16"), "private"],
  [range("198.18.0.0/15"), "reserved"],
  [range("224.0.0.0/4"), "multicast"],
  [range("240.0.0.0/4"), "reserved"],
];

const V6_UNSPECIFIED = range("::/128");
const V6_LOOPBACK = range("::1/128");
const V6_COMPAT = range("::/96");
const V6_MAPPED = range("::ffff:0:0/96");
const V6_NAT64 = range("64:ff9b::/96");

const IPV6_RANGES: readonly (readonly [Range, RefusalReason])[] = [
  [range("fc00::/7"), "private"],
  [range("fe80::/10"), "link-local"],
  [range("ff00::/8"), "multicast"],
  [range("2001:db8::/32"), "reserved"],
];

function within(bytes: Uint8Array, r: Range): boolean {
  return prefixMatches(bytes, r.bytes, r.bits);
}

function ipv4Category(v4: Uint8Array): RefusalReason | null {
  for (const [r, reason] of IPV4_RANGES) if (within(v4, r)) return reason;
  return null;
}

/** The category of an address, ignoring the allow-list; null for global unicast. */
function category(p: Parsed): RefusalReason | null {
  const b = p.bytes;
  let reason: RefusalReason | null;
  if (b.length === 4) {
    reason = ipv4Category(b);
  } else if (within(b, V6_UNSPECIFIED)) {
    reason = "unspecified";
  } else if (within(b, V6_LOOPBACK)) {
    reason = "loopback";
  } else if (within(b, V6_MAPPED) || within(b, V6_COMPAT) || within(b, V6_NAT64)) {
    reason = ipv4Category(b.subarray(12));
  } else {
    reason = null;
    for (const [r, why] of IPV6_RANGES) {
      if (within(b, r)) {
        reason = why;
        break;
      }
    }
  }
  if (reason === null && p.zoned) reason = "link-local";
  return reason;
}

/** The forms an address is matched against the allow-list in: IPv4 <-> IPv4-mapped IPv6. */
function allowForms(bytes: Uint8Array): Uint8Array[] {
  if (bytes.length === 4) {
    const mapped = new Uint8Array(16);
    mapped[10] = 0xff;
    mapped[11] = 0xff;
    mapped.set(bytes, 12);
    return [bytes, mapped];
  }
  if (within(bytes, V6_MAPPED)) return [bytes, bytes.slice(12)];
  return [bytes];
}

function formatBytes(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  // let the WHATWG URL serializer do the canonical "::" compression
  return new URL(`http://[${groups.join(":")}]/`).hostname.slice(1, -1);
}

function parseCidr(entry: string): Range & { text: string } {
  const bad = (why: string): Error =>
    new Error(`invalid network ${JSON.stringify(entry)} in the allowed networks: ${why}`);
  const s = entry.trim();
  const slash = s.indexOf("/");
  const addrText = slash === -1 ? s : s.slice(0, slash);
  if (addrText.includes("%")) throw bad("a zone id is not allowed in a network");
  const parsed = parseAddress(addrText);
  if (parsed === null || addrText.startsWith("[")) throw bad("not an IPv4 or IPv6 address");
  const max = parsed.bytes.length * 8;
  let bits = max;
  if (slash !== -1) {
    const p = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) throw bad("the prefix length must be a decimal number");
    bits = Number(p);
    if (bits > max) throw bad(`the prefix length must be at most ${max}`);
  }
  const bytes = maskTo(parsed.bytes, bits);
  return { bytes, bits, text: `${formatBytes(bytes)}/${bits}` };
}

// ---------------------------------------------------------------------------------------------
// The policy

export class AddressPolicy {
  /** The allowed networks, canonical ("10.0.0.0/8", "::1/128"). */
  readonly allowedNetworks: readonly string[];
  readonly #allowed: readonly Range[];

  /**
   * allowedNetworks: CIDRs (IPv4 or IPv6; a bare address means /32 or /128). Throws an Error
   * naming the bad entry for an invalid CIDR.
   */
  constructor(allowedNetworks: readonly string[]) {
    const parsed = allowedNetworks.map(parseCidr);
    this.#allowed = parsed.map(({ bytes, bits }) => ({ bytes, bits }));
    this.allowedNetworks = Object.freeze(parsed.map((p) => p.text));
  }

  /** Parses HAUL_ALLOWED_NETWORKS: "a/b, c/d"; empty or undefined means no allowed networks. */
  static fromEnv(value: string | undefined): AddressPolicy {
    const entries = (value ?? "")
      .split(",")
      .map((e) => e.trim())
      .filter((e) => e !== "");
    return new AddressPolicy(entries);
  }

  /** null when the address may be connected to; otherwise why not. */
  refusal(address: string): RefusalReason | null {
    const p = parseAddress(address);
    if (p === null) return "invalid";
    const reason = category(p);
    if (reason === null) return null;
    for (const form of allowForms(p.bytes)) {
      for (const r of this.#allowed) if (within(form, r)) return null;
    }
    return reason;
  }

  allows(address: string): boolean {
    return this.refusal(address) === null;
  }
}

// ---------------------------------------------------------------------------------------------
// Connection-time enforcement

/** dns.lookup with { all: true }; injectable for tests. */
export type Resolver = (
  hostname: string,
  options: dns.LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void,
) => void;

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | dns.LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` function for node:http/https/net request options: resolves the host name with
 * dns.lookup({ all: true }), drops every address the policy refuses, and calls back with the first
 * allowed one (or all allowed ones when options.all). If none is allowed, calls back with a
 * DestinationNotAllowedError (code EDESTINATION_NOT_ALLOWED, `address` = the first refused
 * address, `reason`). IP literals never reach `lookup` in Node: check them with literalRefusal.
 */
export function guardedLookup(policy: AddressPolicy, resolve: Resolver = dns.lookup): net.LookupFunction {
  return function lookup(
    hostname: string,
    options: dns.LookupOptions | number | undefined,
    callback: LookupCallback,
  ): void {
    const opts: dns.LookupOptions = typeof options === "number" ? { family: options } : (options ?? {});
    const fail = (err: NodeJS.ErrnoException): void => process.nextTick(() => callback(err, opts.all ? [] : ""));
    const onResolved = (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]): void => {
      if (err) {
        callback(err, opts.all ? [] : "");
        return;
      }
      const allowed: dns.LookupAddress[] = [];
      let firstRefused: { address: string; reason: string } | null = null;
      for (const a of addresses ?? []) {
        const reason = policy.refusal(a.address);
        if (reason === null) {
          allowed.push({ address: a.address, family: net.isIP(a.address) || a.family });
        } else if (firstRefused === null) {
          firstRefused = { address: a.address, reason };
        }
      }
      const first = allowed[0];
      if (first === undefined) {
        if (firstRefused !== null) {
          callback(new DestinationNotAllowedError(firstRefused.address, firstRefused.reason, hostname), opts.all ? [] : "");
        } else {
          const e: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
          e.code = "ENOTFOUND";
          e.syscall = "getaddrinfo";
          callback(e, opts.all ? [] : "");
        }
        return;
      }
      if (opts.all) callback(null, allowed);
      else callback(null, first.address, first.family);
    };
    try {
      resolve(hostname, { ...opts, all: true }, onResolved);
    } catch (e) {
      fail(e instanceof Error ? (e as NodeJS.ErrnoException) : new Error(String(e)));
    }
  };
}

/**
 * For a URL about to be requested: if its hostname is an IP literal (IPv4, or [IPv6]), the
 * refusal (address without brackets, reason) or null; null for names (guardedLookup guards them).
 */
export function literalRefusal(policy: AddressPolicy, url: URL): { address: string; reason: string } | null {
  const address = stripBrackets(url.hostname);
  if (net.isIP(address) === 0) return null;
  const reason = policy.refusal(address);
  return reason === null ? null : { address, reason };
}
