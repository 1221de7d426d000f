/**
 * Destination address policy (src/transfer/address-policy.ts): SSRF protection.
 *
 * The expected categories below are written out by hand from the range table
 * in the brief (and the module's header), never derived from the
 * implementation. Boundaries are tested from both sides: the first and last
 * address of each refused range, and the neighbours just outside it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import type dns from "node:dns";
import {
  AddressPolicy,
  DestinationNotAllowedError,
  guardedLookup,
  literalRefusal,
  type Resolver,
} from "../../src/transfer/address-policy.js";

const NONE = new AddressPolicy([]);

// address -> expected refusal (null = allowed), with no allow-list
const CATEGORIES: readonly (readonly [string, string | null])[] = [
  // 0.0.0.0/8 unspecified
  ["0.0.0.0", "unspecified"],
  ["0.1.2.3", "unspecified"],
  ["0.255.255.255", "unspecified"],
  ["1.0.0.0", null],
  // 10.0.0.0/8 private
  ["9.255.255.255", null],
  ["10.0.0.0", "private"],
  ["10.1.2.3", "private"],
  ["10.255.255.255", "private"],
  ["11.0.0.0", null],
  // 100.64.0.0/10 cgnat
  ["100.63.255.255", null],
  ["100.64.0.0", "cgnat"],
  ["100.100.100.100", "cgnat"],
  ["100.127.255.255", "cgnat"],
  ["100.128.0.0", null],
  // 127.0.0.0/8 loopback
  ["126.255.255.255", null],
  ["127.0.0.1", "loopback"],
  ["127.0.0.0", "loopback"],
  ["127.1.2.3", "loopback"],
  ["127.255.255.255", "loopback"],
  ["128.0.0.0", null],
  // 169.254.0.0/16 link-local (cloud metadata)
  ["169.253.255.255", null],
  ["169.254.0.0", "link-local"],
  ["169.254.169.254", "link-local"],
  ["169.254.255.255", "link-local"],
  ["169.255.0.0", null],
  // 172.16.0.0/12 private
  ["172.15.255.255", null],
  ["172.16.0.0", "private"],
  ["172.20.1.1", "private"],
  ["172.31.255.255", "private"],
  ["172.32.0.0", null],
  // 192.0.0.0/24 reserved (IETF protocol assignments)
  ["191.255.255.255", null],
  ["192.0.0.0", "reserved"],
  ["192.0.0.170", "reserved"],
  ["192.0.0.255", "reserved"],
  ["192.0.1.0", null],
  // 192.168.0.0/16 private
  ["192.167.255.255", null],
  ["192.168.0.0", "private"],
  ["192.168.1.1", "private"],
  ["192.168.255.255", "private"],
  ["192.169.0.0", null],
  // 198.18.0.0/15 reserved (benchmarking)
  ["198.17.255.255", null],
  ["198.18.0.0", "reserved"],
  ["198.19.255.255", "reserved"],
  ["198.20.0.0", null],
  // 224.0.0.0/4 multicast
  ["223.255.255.255", null],
  ["224.0.0.0", "multicast"],
  ["224.0.0.251", "multicast"],
  ["239.255.255.255", "multicast"],
  // 240.0.0.0/4 reserved, incl. broadcast
  ["240.0.0.0", "reserved"],
  ["250.1.2.3", "reserved"],
  ["255.255.255.255", "reserved"],
  // IPv4 global unicast
  ["8.8.8.8", null],
  ["1.1.1.1", null],
  ["93.184.216.34", null],
  ["172.217.16.142", null],

  // IPv6 ::/128 unspecified, ::1/128 loopback
  ["::", "unspecified"],
  ["0:0:0:0:0:0:0:0", "unspecified"],
  ["::1", "loopback"],
  ["0:0:0:0:0:0:0:1", "loopback"],
  ["0000:0000:0000:0000:0000:0000:0000:0001", "loopback"],
  // ::/96 IPv4-compatible: IPv4 rules on the embedded address
  ["::2", "unspecified"], // 0.0.0.2
  ["::7f00:1", "loopback"],
  ["::127.0.0.1", "loopback"],
  ["::a01:203", "private"],
  ["::a9fe:a9fe", "link-local"],
  ["::808:808", null], // 8.8.8.8
  ["::1:0:0", null], // outside ::/96 (and outside every refused range)
  // ::ffff:0:0/96 IPv4-mapped: IPv4 rules on the embedded address
  ["::ffff:127.0.0.1", "loopback"],
  ["::ffff:7f00:1", "loopback"],
  ["::FFFF:7F00:1", "loopback"],
  ["0:0:0:0:0:ffff:7f00:1", "loopback"],
  ["::ffff:127.255.255.255", "loopback"],
  ["::ffff:10.1.2.3", "private"],
  ["::ffff:a01:203", "private"],
  ["::ffff:172.16.0.1", "private"],
  ["::ffff:192.168.0.1", "private"],
  ["::ffff:169.254.169.254", "link-local"],
  ["::ffff:100.64.0.1", "cgnat"],
  ["::ffff:0.0.0.0", "unspecified"],
  ["::ffff:224.0.0.1", "multicast"],
  ["::ffff:255.255.255.255", "reserved"],
  ["::ffff:198.18.0.1", "reserved"],
  ["::ffff:8.8.8.8", null],
  ["::ffff:808:808", null],
  ["::fffe:7f00:1", null], // neither mapped nor compatible
  // 64:ff9b::/96 NAT64: IPv4 rules on the embedded address
  ["64:ff9b::7f00:1", "loopback"],
  ["64:ff9b::127.0.0.1", "loopback"],
  ["64:ff9b::a00:1", "private"],
  ["64:ff9b::a9fe:a9fe", "link-local"],
  ["64:ff9b::808:808", null],
  ["64:ff9b:1::7f00:1", null], // outside the /96 (RFC 8215 local-use prefix is not in the table)
  // fc00::/7 ULA private
  ["fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", null],
  ["fc00::", "private"],
  ["fc00::1", "private"],
  ["fd12:3456:789a::1", "private"],
  ["fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "private"],
  // fe80::/10 link-local
  ["fe80::", "link-local"],
  ["fe80::1", "link-local"],
  ["FE80::1", "link-local"],
  ["febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local"],
  ["fec0::1", null], // deprecated site-local: not in the table
  // ff00::/8 multicast
  ["ff00::", "multicast"],
  ["ff02::1", "multicast"],
  ["ff05::1:3", "multicast"],
  ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast"],
  // 2001:db8::/32 documentation
  ["2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", null],
  ["2001:db8::", "reserved"],
  ["2001:db8::1", "reserved"],
  ["2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "reserved"],
  ["2001:db9::", null],
  // IPv6 global unicast
  ["2606:4700:4700::1111", null],
  ["2001:4860:4860::8888", null],
  ["2a00:1450:4001:80b::200e", null],
  ["2606:2800:220:1:248:1893:25c8:1946", null],
  // zone ids: link-local at least
  ["fe80::1%eth0", "link-local"],
  ["fe80::1%1", "link-local"],
  ["::1%lo", "loopback"],
  ["2606:4700:4700::1111%eth0", "link-local"],
  // brackets are tolerated
  ["[::1]", "loopback"],
  ["[2606:4700:4700::1111]", null],
  // not an address (as net.isIP sees it)
  ["", "invalid"],
  ["abc", "invalid"],
  ["localhost", "invalid"],
  ["example.com", "invalid"],
  ["127.1", "invalid"],
  ["2130706433", "invalid"],
  ["0x7f.0.0.1", "invalid"],
  ["010.0.0.1", "invalid"],
  ["256.0.0.1", "invalid"],
  ["1.2.3.4.5", "invalid"],
  ["1::2::3", "invalid"],
  ["::ffff:1.2.3", "invalid"],
  ["fe80::1%", "invalid"],
  ["12345::", "invalid"],
  ["[127.0.0.1", "invalid"],
];

test("refusal: every range, its boundaries, mapped/compatible/NAT64 forms, zones and invalid input", () => {
  for (const [address, expected] of CATEGORIES) {
    assert.equal(NONE.refusal(address), expected, `refusal(${JSON.stringify(address)})`);
    assert.equal(NONE.allows(address), expected === null, `allows(${JSON.stringify(address)})`);
  }
});

test("refusal agrees with an independent net.BlockList of the IPv4 ranges on random IPv4 and mapped addresses", () => {
  const v4Ranges: readonly [string, number][] = [
    ["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["127.0.0.0", 8], ["169.254.0.0", 16],
    ["172.16.0.0", 12], ["192.0.0.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15],
    ["224.0.0.0", 4], ["240.0.0.0", 4],
  ];
  const oracle = new net.BlockList();
  for (const [a, p] of v4Ranges) oracle.addSubnet(a, p, "ipv4");
  // a cheap deterministic PRNG (xorshift32) so failures are reproducible
  let x = 0x9e3779b9;
  const next = (): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  for (let i = 0; i < 20_000; i++) {
    const n = next();
    const a = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
    const refused = oracle.check(a, "ipv4");
    assert.equal(NONE.refusal(a) !== null, refused, a);
    assert.equal(NONE.refusal(`::ffff:${a}`) !== null, refused, `::ffff:${a}`);
    const hex = `${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
    assert.equal(NONE.refusal(`::ffff:${hex}`) !== null, refused, `::ffff:${hex}`);
    assert.equal(NONE.refusal(`64:ff9b::${hex}`) !== null, refused, `64:ff9b::${hex}`);
  }
});

test("allow-list: 127.0.0.0/8 allows 127.x and its mapped forms, not ::1", () => {
  const p = new AddressPolicy(["127.0.0.0/8"]);
  assert.equal(p.refusal("127.1.2.3"), null);
  assert.equal(p.refusal("127.0.0.1"), null);
  assert.equal(p.refusal("::ffff:127.0.0.1"), null);
  assert.equal(p.refusal("::ffff:7f00:1"), null);
  assert.equal(p.refusal("::1"), "loopback");
  // only the allowed network is opened
  assert.equal(p.refusal("10.0.0.1"), "private");
  assert.equal(p.refusal("::ffff:10.0.0.1"), "private");
  assert.equal(p.refusal("128.0.0.1"), null);
  // NAT64/compatible reach another host: an IPv4 entry does not open them
  assert.equal(p.refusal("64:ff9b::7f00:1"), "loopback");
  assert.equal(p.refusal("::7f00:1"), "loopback");
  // the allow-list never makes garbage an address
  assert.equal(p.refusal("127.1"), "invalid");

  const both = new AddressPolicy(["127.0.0.0/8", "::1/128"]);
  assert.equal(both.refusal("::1"), null);
  assert.equal(both.refusal("::2"), "unspecified");
  assert.equal(both.refusal("::1%lo"), null);
});

test("allow-list: bare addresses, IPv6 networks, mapped-form entries, host bits, wide prefixes", () => {
  const bare = new AddressPolicy(["10.1.2.3", "fd00::1"]);
  assert.deepEqual(bare.allowedNetworks, ["10.1.2.3/32", "fd00::1/128"]);
  assert.equal(bare.refusal("10.1.2.3"), null);
  assert.equal(bare.refusal("10.1.2.4"), "private");
  assert.equal(bare.refusal("fd00::1"), null);
  assert.equal(bare.refusal("fd00::2"), "private");

  const v6 = new AddressPolicy(["fd00::/8", "fe80::/10", "64:ff9b::/96"]);
  assert.equal(v6.refusal("fd12::1"), null);
  assert.equal(v6.refusal("fc00::1"), "private");
  assert.equal(v6.refusal("fe80::1%eth0"), null);
  assert.equal(v6.refusal("64:ff9b::7f00:1"), null);

  // an entry in IPv4-mapped form opens the plain IPv4 addresses too
  const mappedEntry = new AddressPolicy(["::ffff:127.0.0.0/104"]);
  assert.equal(mappedEntry.refusal("127.0.0.1"), null);
  assert.equal(mappedEntry.refusal("::ffff:7f00:1"), null);
  assert.equal(mappedEntry.refusal("::1"), "loopback");

  // host bits below the prefix are ignored; entries are canonical
  const hostBits = new AddressPolicy([" 10.1.2.3/8 ", "FD00:0:0:0:0:0:0:1/16", "192.168.1.0/24"]);
  assert.deepEqual(hostBits.allowedNetworks, ["10.0.0.0/8", "fd00::/16", "192.168.1.0/24"]);
  assert.equal(hostBits.refusal("10.200.0.1"), null);
  assert.equal(hostBits.refusal("192.168.1.77"), null);
  assert.equal(hostBits.refusal("192.168.2.1"), "private");

  // /0 opens a whole family (and the mapped half of IPv6 for 0.0.0.0/0)
  const all4 = new AddressPolicy(["0.0.0.0/0"]);
  assert.equal(all4.refusal("127.0.0.1"), null);
  assert.equal(all4.refusal("::ffff:10.0.0.1"), null);
  assert.equal(all4.refusal("::1"), "loopback");
  const all6 = new AddressPolicy(["::/0"]);
  assert.equal(all6.refusal("::1"), null);
  assert.equal(all6.refusal("::ffff:127.0.0.1"), null);
  assert.equal(all6.refusal("127.0.0.1"), null); // the same destination as ::ffff:127.0.0.1
});

test("allow-list: invalid CIDRs throw an Error naming the entry", () => {
  for (const bad of [
    "10.0.0.0/33",
    "abc",
    "::1/129",
    "10.0.0.0/",
    "10.0.0.0/-1",
    "10.0.0.0/+8",
    "10.0.0.0/8/8",
    "10.0.0.0/0x8",
    "10.0.0/8",
    "256.0.0.0/8",
    "fe80::%eth0/64",
    "[::1]/128",
    "localhost",
    "",
  ]) {
    assert.throws(
      () => new AddressPolicy(["127.0.0.0/8", bad]),
      (e: unknown) => e instanceof Error && e.message.includes(JSON.stringify(bad)),
      `entry ${JSON.stringify(bad)}`,
    );
  }
  for (const ok of ["0.0.0.0/0", "10.0.0.0/32", "::/0", "::1/128", "::ffff:0:0/96", "1.2.3.4/032"]) {
    assert.doesNotThrow(() => new AddressPolicy([ok]), ok);
  }
});

test("fromEnv: comma-separated, blanks ignored, bad entries named", () => {
  assert.deepEqual(AddressPolicy.fromEnv(undefined).allowedNetworks, []);
  assert.deepEqual(AddressPolicy.fromEnv("").allowedNetworks, []);
  assert.deepEqual(AddressPolicy.fromEnv(" , ,").allowedNetworks, []);
  const p = AddressPolicy.fromEnv("127.0.0.0/8, ::1/128 ,10.0.0.0/8,");
  assert.deepEqual(p.allowedNetworks, ["127.0.0.0/8", "::1/128", "10.0.0.0/8"]);
  assert.equal(p.allows("::1"), true);
  assert.equal(p.allows("10.9.9.9"), true);
  assert.equal(p.allows("192.168.0.1"), false);
  assert.equal(AddressPolicy.fromEnv(undefined).allows("127.0.0.1"), false);
  assert.throws(() => AddressPolicy.fromEnv("10.0.0.0/8, 10.0.0.0/33"), /"10\.0\.0\.0\/33"/);
  assert.throws(() => AddressPolicy.fromEnv("abc"), /"abc"/);
});

test("literalRefusal: IP literals as the URL parser normalises them; names are left to the lookup", () => {
  const cases: readonly (readonly [string, { address: string; reason: string } | null])[] = [
    ["http://127.0.0.1/", { address: "127.0.0.1", reason: "loopback" }],
    ["http://127.1.2.3:8080/x", { address: "127.1.2.3", reason: "loopback" }],
    ["http://[::1]/", { address: "::1", reason: "loopback" }],
    ["http://[::ffff:127.0.0.1]/", { address: "::ffff:7f00:1", reason: "loopback" }],
    ["http://[::ffff:7f00:1]:81/", { address: "::ffff:7f00:1", reason: "loopback" }],
    ["http://0x7f.1/", { address: "127.0.0.1", reason: "loopback" }],
    ["http://2130706433/", { address: "127.0.0.1", reason: "loopback" }],
    ["http://017700000001/", { address: "127.0.0.1", reason: "loopback" }],
    ["http://127.0.0.1./", { address: "127.0.0.1", reason: "loopback" }],
    ["http://0/", { address: "0.0.0.0", reason: "unspecified" }],
    ["https://169.254.169.254/latest/meta-data/", { address: "169.254.169.254", reason: "link-local" }],
    ["https://user:pw@10.0.0.1:8443/", { address: "10.0.0.1", reason: "private" }],
    ["http://[fe80::1]/", { address: "fe80::1", reason: "link-local" }],
    ["http://[fd00::1]/", { address: "fd00::1", reason: "private" }],
    ["http://[64:ff9b::a9fe:a9fe]/", { address: "64:ff9b::a9fe:a9fe", reason: "link-local" }],
    ["http://8.8.8.8/", null],
    ["http://[2606:4700:4700::1111]/", null],
    ["http://localhost/", null],
    ["https://example.com/", null],
    ["http://127.0.0.1.nip.io/", null],
  ];
  for (const [url, expected] of cases) {
    assert.deepEqual(literalRefusal(NONE, new URL(url)), expected, url);
  }
  const allowed = new AddressPolicy(["127.0.0.0/8"]);
  assert.equal(literalRefusal(allowed, new URL("http://0x7f.1/")), null);
  assert.equal(literalRefusal(allowed, new URL("http://[::ffff:127.0.0.1]/")), null);
  assert.deepEqual(literalRefusal(allowed, new URL("http://[::1]/")), { address: "::1", reason: "loopback" });
});

// -------------------------------------------------------------------------------------------
// guardedLookup

type LookupResult = { err: NodeJS.ErrnoException | null; address: string | dns.LookupAddress[]; family?: number };

function runLookup(
  lookup: net.LookupFunction,
  hostname: string,
  options: dns.LookupOptions,
): Promise<LookupResult> {
  return new Promise((resolve) => {
    lookup(hostname, options, (err, address, family) => resolve({ err, address, family }));
  });
}

function fakeResolver(
  answers: dns.LookupAddress[] | ((call: number) => dns.LookupAddress[]) | NodeJS.ErrnoException,
  seen: { hostname: string; options: dns.LookupAllOptions }[] = [],
): Resolver {
  return (hostname, options, callback) => {
    seen.push({ hostname, options });
    const call = seen.length;
    setImmediate(() => {
      if (answers instanceof Error) callback(answers, []);
      else callback(null, typeof answers === "function" ? answers(call) : answers);
    });
  };
}

const v4 = (address: string): dns.LookupAddress => ({ address, family: 4 });
const v6 = (address: string): dns.LookupAddress => ({ address, family: 6 });

test("guardedLookup (fake resolver): refused-only answers fail with EDESTINATION_NOT_ALLOWED", async () => {
  const lookup = guardedLookup(NONE, fakeResolver([v4("10.0.0.5"), v6("::1"), v4("127.0.0.1")]));
  for (const all of [false, true]) {
    const { err } = await runLookup(lookup, "internal.example", { all });
    assert.ok(err instanceof DestinationNotAllowedError, `all=${all}`);
    assert.equal(err.code, "EDESTINATION_NOT_ALLOWED");
    assert.equal(err.address, "10.0.0.5");
    assert.equal(err.reason, "private");
    assert.equal(err.hostname, "internal.example");
    assert.match(err.message, /internal\.example/);
    assert.match(err.message, /10\.0\.0\.5/);
  }
});

test("guardedLookup (fake resolver): drops refused addresses, returns the first allowed or all allowed", async () => {
  const seen: { hostname: string; options: dns.LookupAllOptions }[] = [];
  const answers = [v4("10.0.0.5"), v4("93.184.216.34"), v6("::ffff:127.0.0.1"), v6("2606:4700:4700::1111"), v4("1.1.1.1")];
  const lookup = guardedLookup(NONE, fakeResolver(answers, seen));

  const one = await runLookup(lookup, "mixed.example", { family: 0 });
  assert.equal(one.err, null);
  assert.equal(one.address, "93.184.216.34");
  assert.equal(one.family, 4);

  const many = await runLookup(lookup, "mixed.example", { all: true, family: 0 });
  assert.equal(many.err, null);
  assert.deepEqual(many.address, [v4("93.184.216.34"), v6("2606:4700:4700::1111"), v4("1.1.1.1")]);

  // the resolver is always asked for every address, with the caller's other options kept
  await runLookup(lookup, "mixed.example", { family: 6, hints: 0 });
  assert.deepEqual(
    seen.map((s) => s.options),
    [{ family: 0, all: true }, { family: 0, all: true }, { family: 6, hints: 0, all: true }],
  );
  assert.ok(seen.every((s) => s.hostname === "mixed.example"));

  // an IPv6 first answer is reported with family 6
  const six = await runLookup(guardedLookup(NONE, fakeResolver([v6("2606:4700:4700::1111")])), "x", {});
  assert.equal(six.address, "2606:4700:4700::1111");
  assert.equal(six.family, 6);
});

test("guardedLookup (fake resolver): the allow-list applies to resolved addresses", async () => {
  const policy = new AddressPolicy(["10.0.0.0/8"]);
  const lookup = guardedLookup(policy, fakeResolver([v4("127.0.0.1"), v4("10.0.0.5"), v4("192.168.1.1")]));
  const one = await runLookup(lookup, "svc.internal", {});
  assert.equal(one.err, null);
  assert.equal(one.address, "10.0.0.5");
  const many = await runLookup(lookup, "svc.internal", { all: true });
  assert.deepEqual(many.address, [v4("10.0.0.5")]);
});

test("guardedLookup (fake resolver): every connection re-checks, so a rebinding answer is refused", async () => {
  const lookup = guardedLookup(
    NONE,
    fakeResolver((call) => (call === 1 ? [v4("93.184.216.34")] : [v4("169.254.169.254")])),
  );
  const first = await runLookup(lookup, "rebind.example", {});
  assert.equal(first.err, null);
  assert.equal(first.address, "93.184.216.34");
  const second = await runLookup(lookup, "rebind.example", {});
  assert.equal((second.err as DestinationNotAllowedError | null)?.code, "EDESTINATION_NOT_ALLOWED");
  assert.equal((second.err as DestinationNotAllowedError).reason, "link-local");
});

test("guardedLookup (fake resolver): resolver errors pass through; empty answers and throws become errors", async () => {
  const notFound: NodeJS.ErrnoException = Object.assign(new Error("getaddrinfo ENOTFOUND nope.invalid"), {
    code: "ENOTFOUND",
  });
  const passed = await runLookup(guardedLookup(NONE, fakeResolver(notFound)), "nope.invalid", {});
  assert.equal(passed.err, notFound);

  const empty = await runLookup(guardedLookup(NONE, fakeResolver([])), "empty.example", { all: true });
  assert.equal(empty.err?.code, "ENOTFOUND");

  const throwing: Resolver = () => {
    throw new TypeError("bad hostname");
  };
  const p = runLookup(guardedLookup(NONE, throwing), "x", {});
  const calledBack = await Promise.race([p.then(() => "called"), Promise.resolve("pending")]);
  assert.equal(calledBack, "pending"); // never synchronously
  const thrown = await p;
  assert.ok(thrown.err instanceof TypeError);
});

test("guardedLookup with real DNS: localhost is loopback (from /etc/hosts)", async () => {
  const refused = await runLookup(guardedLookup(NONE), "localhost", {});
  assert.ok(refused.err instanceof DestinationNotAllowedError);
  assert.equal(refused.err.code, "EDESTINATION_NOT_ALLOWED");
  assert.equal(refused.err.reason, "loopback");
  assert.ok(net.isIP(refused.err.address) !== 0);

  const policy = new AddressPolicy(["127.0.0.0/8", "::1/128"]);
  const allowed = await runLookup(guardedLookup(policy), "localhost", {});
  assert.equal(allowed.err, null);
  assert.equal(typeof allowed.address, "string");
  assert.equal(NONE.refusal(allowed.address as string), "loopback");
  assert.ok(allowed.family === 4 || allowed.family === 6);

  const all = await runLookup(guardedLookup(policy), "localhost", { all: true });
  assert.equal(all.err, null);
  assert.ok(Array.isArray(all.address) && all.address.length > 0);
});

// -------------------------------------------------------------------------------------------
// End to end through node:http

async function withServer(fn: (port: number, hits: () => number) => Promise<void>): Promise<void> {
  let count = 0;
  const server = http.createServer((_req, res) => {
    count++;
    res.end("ok");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  try {
    await fn(port, () => count);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function get(
  url: string,
  // autoSelectFamily reaches net.connect at run time; @types/node 20 lacks it on RequestOptions
  options: http.RequestOptions & { autoSelectFamily?: boolean },
): Promise<{ status: number; body: string } | { error: NodeJS.ErrnoException }> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, ...options }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", (error: NodeJS.ErrnoException) => resolve({ error }));
  });
}

for (const autoSelectFamily of [true, false]) {
  test(`end to end (autoSelectFamily ${autoSelectFamily}): http.get to localhost is refused before connecting, allowed with the allow-list`, async () => {
    await withServer(async (port, hits) => {
      const refused = await get(`http://localhost:${port}/`, {
        lookup: guardedLookup(new AddressPolicy([])),
        autoSelectFamily,
      });
      assert.ok("error" in refused, "the request must fail");
      assert.equal(refused.error.code, "EDESTINATION_NOT_ALLOWED");
      assert.equal((refused.error as DestinationNotAllowedError).reason, "loopback");
      assert.equal(hits(), 0, "the server must never see a request");

      const ok = await get(`http://localhost:${port}/`, {
        lookup: guardedLookup(new AddressPolicy(["127.0.0.0/8"])),
        autoSelectFamily,
      });
      assert.deepEqual(ok, { status: 200, body: "ok" });
      assert.equal(hits(), 1);
    });
  });
}

test("end to end: Node never calls lookup for an IP literal, which is why literalRefusal exists", async () => {
  await withServer(async (port, hits) => {
    let called = 0;
    const inner = guardedLookup(NONE);
    const counting: net.LookupFunction = (h, o, cb) => {
      called++;
      inner(h, o, cb);
    };
    const url = new URL(`http://127.0.0.1:${port}/`);
    assert.deepEqual(literalRefusal(NONE, url), { address: "127.0.0.1", reason: "loopback" });
    const res = await get(url.href, { lookup: counting });
    assert.deepEqual(res, { status: 200, body: "ok" });
    assert.equal(called, 0);
    assert.equal(hits(), 1);
  });
});
