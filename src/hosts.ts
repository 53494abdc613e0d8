import { BlockList, isIP } from "node:net";

/** Address ranges that are not the public internet (RFC 6890 special-purpose registries), with what each is. */
const SPECIAL_PURPOSE: readonly [string, number, "ipv4" | "ipv6", string][] = [
  ["0.0.0.0", 8, "ipv4", "an unspecified"],
  ["10.0.0.0", 8, "ipv4", "a private"],
  ["100.64.0.0", 10, "ipv4", "a shared (CGNAT)"],
  ["127.0.0.0", 8, "ipv4", "a loopback"],
  ["169.254.0.0", 16, "ipv4", "a link-local"],
  ["172.16.0.0", 12, "ipv4", "a private"],
  ["192.0.0.0", 24, "ipv4", "a reserved"],
  ["192.0.2.0", 24, "ipv4", "a documentation"],
  ["192.88.99.0", 24, "ipv4", "a reserved"],
  ["192.168.0.0", 16, "ipv4", "a private"],
  ["198.18.0.0", 15, "ipv4", "a benchmarking"],
  ["198.51.100.0", 24, "ipv4", "a documentation"],
  ["203.0.113.0", 24, "ipv4", "a documentation"],
  ["224.0.0.0", 4, "ipv4", "a multicast"],
  ["240.0.0.0", 4, "ipv4", "a reserved or broadcast"],
  ["::", 128, "ipv6", "an unspecified"],
  ["::1", 128, "ipv6", "a loopback"],
  ["::", 96, "ipv6", "an IPv4-compatible"],
  ["::ffff:0:0:0", 96, "ipv6", "an IPv4-translated"],
  ["64:ff9b:1::", 48, "ipv6", "a local NAT64"],
  ["100::", 64, "ipv6", "a discard"],
  ["2001::", 23, "ipv6", "a reserved"],
  ["2001:db8::", 32, "ipv6", "a documentation"],
  ["fc00::", 7, "ipv6", "a unique-local"],
  ["fe80::", 10, "ipv6", "a link-local"],
  ["fec0::", 10, "ipv6", "a site-local"],
  ["ff00::", 8, "ipv6", "a multicast"],
];

const RANGES = SPECIAL_PURPOSE.map(([network, prefix, type, kind]) => {
  const list = new BlockList();
  list.addSubnet(network, prefix, type);
  return { list, kind };
});

/** Private, link-local and unique-local ranges (RFC 1918, RFC 3927, RFC 4193, RFC 4291 §2.5.6), and loopback. */
const SITE_LOCAL_KINDS = new Set(["a private", "a link-local", "a unique-local", "a loopback"]);
const SITE_LOCAL_RANGES = new BlockList();
for (const [network, prefix, type, kind] of SPECIAL_PURPOSE) if (SITE_LOCAL_KINDS.has(kind)) SITE_LOCAL_RANGES.addSubnet(network, prefix, type);

/** Names that resolve only inside a site (RFC 6762 .local, RFC 6761 .localhost, RFC 8375 .home.arpa, ICANN's .internal, the common .lan). */
const LOCAL_SUFFIXES = [".internal", ".local", ".localhost", ".lan", ".home.arpa"];

/** What special-purpose range holds an IP address ("a private", "a loopback" …), or undefined for a public one. */
export function specialPurposeKind(address: string, type: "ipv4" | "ipv6"): string | undefined {
  // BlockList checks IPv4-mapped IPv6 (::ffff:a.b.c.d) against the IPv4 ranges too
  return RANGES.find(({ list }) => list.check(address, type))?.kind;
}

export const isLoopbackHost = (hostname: string): boolean => hostname === "localhost" || hostname === "[::1]" || /^127(\.\d{1,3}){3}$/.test(hostname);

/** A host that belongs to the operator: identity headers may go there without `thirdParty` (docs/upstreams.md). */
export function isFirstPartyHost(hostname: string, publicUrl: string): boolean {
  const host = bareHost(hostname);
  const publicHost = bareHost(new URL(publicUrl).hostname);
  if (isSiteLocalHost(host) || host === publicHost) return true;
  if (isIP(host) !== 0) return false;
  const parent = publicHost.slice(publicHost.indexOf(".") + 1);
  return isIP(publicHost) === 0 && publicHost.includes(".") && parent.includes(".") && (host === parent || host.endsWith(`.${parent}`));
}

/** Reachable only inside a site: loopback, a private, link-local or unique-local address, a single-label name, or a local suffix. */
export function isSiteLocalHost(hostname: string): boolean {
  const host = bareHost(hostname);
  const family = isIP(host);
  if (isLoopbackHost(host)) return true;
  if (family !== 0) return SITE_LOCAL_RANGES.check(host, family === 4 ? "ipv4" : "ipv6");
  return !host.includes(".") || LOCAL_SUFFIXES.some((suffix) => host.endsWith(suffix));
}

/** Lowercase, without IPv6 brackets or the root's trailing dot. */
const bareHost = (hostname: string): string =>
  hostname
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1")
    .replace(/\.$/, "");
