import dns from 'node:dns';
import net from 'node:net';
import { InputError } from '../errors';
import { bareHostname } from './endpoint';

/**
 * SSRF guard for upstream URLs, which come from API callers. A URL is refused (403
 * `upstream_forbidden`) when ANY address its host resolves to is loopback, private,
 * link-local (which holds the EC2 instance metadata service, 169.254.169.254), CGNAT,
 * unspecified, multicast or reserved — unless the stack allow-lists the hostname or a CIDR
 * containing the address. "Any", not "first": a name with one public and one private record
 * would otherwise let the connect-time pick land on the private one.
 *
 * Numeric tricks (`2130706433`, `0x7f.1`, `0177.0.0.1`) are normalised by the WHATWG URL parser
 * before we see the host (ws/wss/http/https are "special" schemes), and IPv4-mapped IPv6
 * (`::ffff:127.0.0.1`, also written `::ffff:7f00:1`) is matched against the IPv4 ranges by
 * `net.BlockList`. The agent repeats the check at connect time and dials the address it
 * checked, so a DNS answer that changes between the API call and the connect (rebinding)
 * cannot move the socket onto a private address.
 */

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export const systemResolver: Resolver = async (hostname) => {
  const all = await dns.promises.lookup(hostname, { all: true, verbatim: true });
  return all.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

const BLOCKED: ReadonlyArray<readonly [string, number, 'ipv4' | 'ipv6', string]> = [
  ['0.0.0.0', 8, 'ipv4', 'unspecified'],
  ['10.0.0.0', 8, 'ipv4', 'private'],
  ['100.64.0.0', 10, 'ipv4', 'carrier-grade NAT'],
  ['127.0.0.0', 8, 'ipv4', 'loopback'],
  ['169.254.0.0', 16, 'ipv4', 'link-local/metadata'],
  ['172.16.0.0', 12, 'ipv4', 'private'],
  ['192.0.0.0', 24, 'ipv4', 'IETF protocol assignments'],
  ['192.168.0.0', 16, 'ipv4', 'private'],
  ['198.18.0.0', 15, 'ipv4', 'benchmarking'],
  ['224.0.0.0', 4, 'ipv4', 'multicast'],
  ['240.0.0.0', 4, 'ipv4', 'reserved'],
  ['::', 128, 'ipv6', 'unspecified'],
  ['::1', 128, 'ipv6', 'loopback'],
  // NAT64 well-known prefix: reaches whatever IPv4 address is embedded, private ones included.
  ['64:ff9b::', 96, 'ipv6', 'NAT64'],
  // RFC 8215 local-use NAT64 prefix: translated by a network-local gateway, to any IPv4 address.
  ['64:ff9b:1::', 48, 'ipv6', 'local-use NAT64'],
  // RFC 6666 discard-only prefix.
  ['100::', 64, 'ipv6', 'discard-only'],
  // Teredo (RFC 4380): the server and client IPv4 addresses are obfuscated in the address and the
  // tunnel goes through whatever relay the network has; no legitimate upstream is reached this way.
  ['2001::', 32, 'ipv6', 'Teredo'],
  // SIIT IPv4-translated addresses (RFC 2765, ::ffff:0:a.b.c.d): a translator maps them to the
  // embedded IPv4 address. (IPv4-mapped ::ffff:a.b.c.d is matched against the IPv4 ranges above.)
  ['::ffff:0:0:0', 96, 'ipv6', 'SIIT IPv4-translated'],
  ['fc00::', 7, 'ipv6', 'unique local (private)'],
  ['fe80::', 10, 'ipv6', 'link-local'],
  ['fec0::', 10, 'ipv6', 'site-local'],
  ['ff00::', 8, 'ipv6', 'multicast'],
];

const blockLists = BLOCKED.map(([addr, prefix, type, label]) => {
  const b = new net.BlockList();
  b.addSubnet(addr, prefix, type);
  return { b, label };
});

function familyOf(address: string): 'ipv4' | 'ipv6' | undefined {
  const f = net.isIP(address);
  return f === 4 ? 'ipv4' : f === 6 ? 'ipv6' : undefined;
}

/** The name of the forbidden range `address` is in, or undefined for a public address. */
export function forbiddenRange(address: string): string | undefined {
  const fam = familyOf(address);
  if (!fam) return 'not an IP address';
  // BlockList matches IPv4-mapped IPv6 (::ffff:a.b.c.d) against IPv4 subnets.
  for (const { b, label } of blockLists) if (b.check(address, fam)) return label;
  // IPv4-compatible IPv6 (::a.b.c.d, ::/96, deprecated by RFC 4291) embeds an IPv4 address too.
  // The URL parser rewrites `[::127.0.0.1]` to `[::7f00:1]`, so the groups are read, not the text.
  const compat = ipv4CompatibleIpv4(address);
  if (compat) {
    const r = forbiddenRange(compat);
    return r ? `IPv4-compatible (embedding a ${r} address)` : undefined;
  }
  // 6to4 (RFC 3056, 2002:AABB:CCDD::/48) routes to the IPv4 address AA.BB.CC.DD through a relay:
  // 2002:a9fe:a9fe:: is the metadata service. Public embedded addresses are allowed.
  if (fam === 'ipv6' && sixToFour.check(address, 'ipv6')) {
    const embedded = sixToFourIpv4(address);
    const r = embedded ? forbiddenRange(embedded) : 'not an IP address';
    return r ? `6to4 (embedding a ${r} address)` : undefined;
  }
  return undefined;
}

const sixToFour = new net.BlockList();
sixToFour.addSubnet('2002::', 16, 'ipv6');

/** The IPv4 address embedded in an IPv4-compatible address (::a.b.c.d), or undefined. */
export function ipv4CompatibleIpv4(address: string): string | undefined {
  if (!net.isIPv6(address)) return undefined;
  const g = expandIpv6(address);
  if (!g || g.slice(0, 6).some((x) => x !== 0)) return undefined;
  return [g[6] >> 8, g[6] & 0xff, g[7] >> 8, g[7] & 0xff].join('.');
}

/** The IPv4 address in bits 16..47 of a 6to4 address. */
export function sixToFourIpv4(address: string): string | undefined {
  const groups = expandIpv6(address);
  if (!groups) return undefined;
  return [groups[1] >> 8, groups[1] & 0xff, groups[2] >> 8, groups[2] & 0xff].join('.');
}

/** The eight 16-bit groups of an IPv6 address (handles `::` and a dotted IPv4 tail). */
export function expandIpv6(address: string): number[] | undefined {
  if (net.isIPv6(address) === false) return undefined;
  let a = address.toLowerCase().replace(/%.*$/, '');
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (v4) {
    const [b0, b1, b2, b3] = v4.slice(1).map(Number);
    a = a.slice(0, v4.index) + ((b0 << 8) | b1).toString(16) + ':' + ((b2 << 8) | b3).toString(16);
  }
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const fill = tail === undefined ? 0 : 8 - h.length - t.length;
  const groups = [...h, ...Array(fill).fill('0'), ...t].map((g) => parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => g >= 0 && g <= 0xffff) ? groups : undefined;
}

/** Allow-list: hostnames (exact, case-insensitive), IP addresses, or CIDRs. */
export class AllowList {
  private readonly hosts = new Set<string>();
  private readonly nets = new net.BlockList();
  private netCount = 0;

  constructor(entries: readonly string[]) {
    for (const raw of entries) {
      const e = raw.trim().toLowerCase();
      if (!e) continue;
      const m = /^(.+)\/(\d{1,3})$/.exec(e);
      if (m && familyOf(m[1])) {
        const fam = familyOf(m[1])!;
        const prefix = Number(m[2]);
        if (prefix > (fam === 'ipv4' ? 32 : 128)) throw new InputError('invalid_allow_list', `allow-list entry ${raw} has an invalid prefix`);
        this.nets.addSubnet(m[1], prefix, fam);
        this.netCount++;
      } else if (familyOf(e)) {
        this.nets.addAddress(e, familyOf(e)!);
        this.netCount++;
      } else {
        this.hosts.add(e.replace(/\.$/, ''));
      }
    }
  }

  hostAllowed(hostname: string): boolean {
    return this.hosts.has(hostname.toLowerCase().replace(/\.$/, ''));
  }

  addressAllowed(address: string): boolean {
    const fam = familyOf(address);
    return this.netCount > 0 && !!fam && this.nets.check(address, fam);
  }
}

export interface CheckedTarget {
  readonly hostname: string;
  /** Every address the host resolved to, each one checked. */
  readonly addresses: readonly ResolvedAddress[];
}

export class UpstreamForbiddenError extends InputError {
  constructor(message: string) {
    super('upstream_forbidden', message, 403);
    this.name = 'UpstreamForbiddenError';
  }
}

/**
 * ws:// and http:// upstreams would carry the Basic credentials (and the data) in cleartext, so
 * they are refused with 400 `insecure_scheme` unless the stack trusts the host: the hostname is
 * allow-listed, or every address it resolves to is in an allow-listed CIDR (the local stack lists
 * loopback, so local platforms still work without TLS).
 */
export class InsecureSchemeError extends InputError {
  constructor(message: string) {
    super('insecure_scheme', message, 400);
    this.name = 'InsecureSchemeError';
  }
}

const CLEARTEXT_SCHEMES: readonly string[] = ['ws:', 'http:'];

export class SsrfGuard {
  private readonly allow: AllowList;
  private readonly resolve: Resolver;

  constructor(opts: { allowHosts: readonly string[]; resolve?: Resolver }) {
    this.allow = new AllowList(opts.allowHosts);
    this.resolve = opts.resolve ?? systemResolver;
  }

  /**
   * Resolves the URL's host and checks every address, then the scheme. Throws 400
   * `unresolvable_host`, 403 `upstream_forbidden`, or 400 `insecure_scheme`.
   */
  async check(url: URL): Promise<CheckedTarget> {
    const hostname = bareHostname(url);
    const hostAllowed = this.allow.hostAllowed(hostname);
    let addresses: ResolvedAddress[];
    const literal = net.isIP(hostname);
    if (literal) {
      addresses = [{ address: hostname, family: literal === 6 ? 6 : 4 }];
    } else {
      try {
        addresses = await this.resolve(hostname);
      } catch {
        throw new InputError('unresolvable_host', `host of interWorkingInterface (${hostname}) does not resolve`);
      }
      if (addresses.length === 0) throw new InputError('unresolvable_host', `host of interWorkingInterface (${hostname}) does not resolve`);
    }
    for (const a of addresses) {
      const range = forbiddenRange(a.address);
      if (range && !hostAllowed && !this.allow.addressAllowed(a.address)) {
        throw new UpstreamForbiddenError(
          `interWorkingInterface host ${hostname} resolves to a ${range} address, which this stack does not allow`,
        );
      }
    }
    if (CLEARTEXT_SCHEMES.includes(url.protocol) && !hostAllowed && !addresses.every((a) => this.allow.addressAllowed(a.address))) {
      const scheme = url.protocol.replace(/:$/, '');
      throw new InsecureSchemeError(
        `interWorkingInterface uses ${scheme}://, which would send the credentials unencrypted; use ${scheme === 'ws' ? 'wss' : 'https'}:// (cleartext is allowed only for hosts in UPSTREAM_ALLOW_HOSTS)`,
      );
    }
    return { hostname, addresses };
  }
}
