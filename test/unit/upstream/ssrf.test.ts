import { expect } from 'chai';
import { InputError } from '../../../lib/errors';
import { parseUpstreamUrl, toWebSocketUrl } from '../../../lib/upstream/endpoint';
import { AllowList, forbiddenRange, SsrfGuard, type Resolver } from '../../../lib/upstream/ssrf';

const resolverOf =
  (table: Record<string, string[]>): Resolver =>
  async (host) => {
    const a = table[host];
    if (!a) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return a.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

async function rejection(p: Promise<unknown>): Promise<InputError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(InputError);
    return err as InputError;
  }
  throw new Error('expected a rejection');
}

describe('SSRF guard: address ranges', () => {
  const blocked: [string, string][] = [
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['169.254.169.254', 'link-local/metadata'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['fc00::1', 'unique local (private)'],
    ['fd00:ec2::254', 'unique local (private)'],
    ['fe80::1', 'link-local'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:169.254.169.254', 'link-local/metadata'],
    ['::ffff:a9fe:a9fe', 'link-local/metadata'],
    ['64:ff9b::7f00:1', 'NAT64'],
    ['224.0.0.1', 'multicast'],
    // Review finding 9: IPv6 transition and special-purpose ranges.
    ['64:ff9b:1::a00:1', 'local-use NAT64'],
    ['64:ff9b:1:ffff::8.8.8.8', 'local-use NAT64'],
    ['100::1', 'discard-only'],
    ['100::ffff:ffff:ffff:ffff', 'discard-only'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'Teredo'],
    ['2001::1', 'Teredo'],
    ['::ffff:0:7f00:1', 'SIIT IPv4-translated'],
    ['::ffff:0:8.8.8.8', 'SIIT IPv4-translated'],
    ['2002:a9fe:a9fe::', '6to4 (embedding a link-local/metadata address)'],
    ['2002:a9fe:a9fe:1:2:3:4:5', '6to4 (embedding a link-local/metadata address)'],
    ['2002:7f00:1::1', '6to4 (embedding a loopback address)'],
    ['2002:0a00:0001::', '6to4 (embedding a private address)'],
    ['2002:c0a8:0101::1', '6to4 (embedding a private address)'],
    ['2002::', '6to4 (embedding a unspecified address)'],
    // IPv4-compatible (::a.b.c.d), in both spellings: the URL parser turns the dotted one into hex.
    ['::127.0.0.1', 'IPv4-compatible (embedding a loopback address)'],
    ['::7f00:1', 'IPv4-compatible (embedding a loopback address)'],
    ['::169.254.169.254', 'IPv4-compatible (embedding a link-local/metadata address)'],
    ['::a9fe:a9fe', 'IPv4-compatible (embedding a link-local/metadata address)'],
    ['::10.0.0.1', 'IPv4-compatible (embedding a private address)'],
  ];
  for (const [addr, label] of blocked) {
    it(`${addr} is ${label}`, () => expect(forbiddenRange(addr)).to.equal(label));
  }
  for (const addr of [
    '93.184.216.34',
    '8.8.8.8',
    '172.32.0.1',
    '2606:4700::1111',
    '::ffff:8.8.8.8',
    '::8.8.8.8', // IPv4-compatible, embedding a public address
    '2002:0808:0808::1', // 6to4 embedding a public address (8.8.8.8)
    '2001:4860:4860::8888', // 2001:4860::/32 is not Teredo (2001:0000::/32 is)
    '100:0:0:1::1', // outside 100::/64
    '64:ff9b:2::1', // outside 64:ff9b:1::/48
  ]) {
    it(`${addr} is public`, () => expect(forbiddenRange(addr)).to.equal(undefined));
  }
});

describe('SSRF guard: URLs', () => {
  const guard = new SsrfGuard({
    allowHosts: [],
    resolve: resolverOf({
      'platform.example.com': ['93.184.216.34'],
      'rebind.example.com': ['93.184.216.34', '10.0.0.5'],
      'metadata.example.com': ['169.254.169.254'],
      localhost: ['127.0.0.1', '::1'],
    }),
  });

  it('accepts a public host and returns every checked address', async () => {
    const t = await guard.check(parseUpstreamUrl('wss://platform.example.com/ws'));
    expect(t.addresses.map((a) => a.address)).to.deep.equal(['93.184.216.34']);
  });

  const forbidden = [
    'ws://127.0.0.1:8080/',
    'ws://localhost/',
    'http://169.254.169.254/latest/meta-data/',
    'ws://metadata.example.com/',
    'ws://rebind.example.com/', // ANY private address refuses the host
    'ws://2130706433/', // decimal 127.0.0.1
    'ws://0x7f.0.0.1/', // hex
    'ws://0177.0.0.1/', // octal
    'ws://127.1/', // short form
    'ws://[::1]/',
    'ws://[::ffff:127.0.0.1]/',
    'wss://[::127.0.0.1]/',
    'wss://[::169.254.169.254]/',
    'wss://[::7f00:1]:8443/',
    'ws://[fe80::1]/',
    'ws://0.0.0.0/',
    'ws://10.0.0.1/',
  ];
  for (const u of forbidden) {
    it(`refuses ${u} with 403 upstream_forbidden`, async () => {
      const e = await rejection(guard.check(parseUpstreamUrl(u)));
      expect(e.code).to.equal('upstream_forbidden');
      expect(e.status).to.equal(403);
    });
  }

  it('refuses a host that does not resolve with 400 unresolvable_host', async () => {
    const e = await rejection(guard.check(parseUpstreamUrl('wss://nowhere.example.com/')));
    expect([e.code, e.status]).to.deep.equal(['unresolvable_host', 400]);
  });

  it('refuses non-ws/wss/http/https URLs and URLs with credentials with 400 invalid_url', () => {
    for (const u of ['ftp://platform.example.com/', 'file:///etc/passwd', 'gopher://x/', 'not a url', 'wss://user:pw@platform.example.com/']) {
      expect(() => parseUpstreamUrl(u), u).to.throw(InputError).with.property('code', 'invalid_url');
    }
  });

  it('maps http(s) base URLs to ws(s) on the same host, path and query', () => {
    expect(toWebSocketUrl(parseUpstreamUrl('http://h.example:8080/api/ws?x=1#frag')).href).to.equal('ws://h.example:8080/api/ws?x=1');
    expect(toWebSocketUrl(parseUpstreamUrl('https://h.example/p')).href).to.equal('wss://h.example/p');
    expect(toWebSocketUrl(parseUpstreamUrl('wss://h.example/p')).href).to.equal('wss://h.example/p');
  });

  it('allows what the stack allow-lists (CIDRs and hostnames), nothing more', async () => {
    const local = new SsrfGuard({ allowHosts: ['127.0.0.1/8', '::1/128', 'localhost'], resolve: resolverOf({ localhost: ['127.0.0.1', '::1'] }) });
    await local.check(parseUpstreamUrl('ws://127.0.0.1:9000/'));
    await local.check(parseUpstreamUrl('ws://[::1]:9000/'));
    await local.check(parseUpstreamUrl('ws://localhost:9000/'));
    expect((await rejection(local.check(parseUpstreamUrl('http://169.254.169.254/')))).code).to.equal('upstream_forbidden');
    expect((await rejection(local.check(parseUpstreamUrl('ws://10.0.0.1/')))).code).to.equal('upstream_forbidden');
  });

  describe('cleartext schemes', () => {
    const resolve = resolverOf({ 'platform.example.com': ['93.184.216.34'], 'partner.internal': ['10.1.2.3'], 'dual.example': ['10.1.2.3', '93.184.216.34'], localhost: ['127.0.0.1', '::1'] });
    const cases: [string, string[], 'ok' | 'insecure_scheme' | 'upstream_forbidden'][] = [
      ['ws://platform.example.com/feed', [], 'insecure_scheme'],
      ['http://platform.example.com/feed', [], 'insecure_scheme'],
      ['ws://93.184.216.34/feed', [], 'insecure_scheme'],
      ['wss://platform.example.com/feed', [], 'ok'],
      ['https://platform.example.com/feed', [], 'ok'],
      // Allow-listed by name, or every address inside an allow-listed CIDR: cleartext is trusted.
      ['ws://platform.example.com/feed', ['platform.example.com'], 'ok'],
      ['http://platform.example.com/feed', ['93.184.216.0/24'], 'ok'],
      ['ws://localhost:9000/', ['127.0.0.0/8', '::1/128'], 'ok'],
      // Only some addresses trusted: the public one would carry the credentials in cleartext.
      ['ws://dual.example/', ['10.0.0.0/8'], 'insecure_scheme'],
      ['ws://partner.internal/', ['10.0.0.0/8'], 'ok'],
      // The SSRF check comes first: a private host that is not allow-listed stays 403.
      ['ws://10.0.0.1/', [], 'upstream_forbidden'],
    ];
    for (const [url, allowHosts, want] of cases) {
      it(`${url} with allow-list [${allowHosts.join(', ')}] → ${want}`, async () => {
        const g = new SsrfGuard({ allowHosts, resolve });
        if (want === 'ok') {
          await g.check(parseUpstreamUrl(url));
          return;
        }
        const e = await rejection(g.check(parseUpstreamUrl(url)));
        expect([e.code, e.status]).to.deep.equal([want, want === 'insecure_scheme' ? 400 : 403]);
      });
    }
  });

  it('parses allow-list entries and rejects bad prefixes', () => {
    const a = new AllowList(['10.0.0.0/8', 'Internal.Example.', '192.168.1.7']);
    expect(a.addressAllowed('10.9.9.9')).to.equal(true);
    expect(a.addressAllowed('192.168.1.7')).to.equal(true);
    expect(a.addressAllowed('192.168.1.8')).to.equal(false);
    expect(a.hostAllowed('internal.example')).to.equal(true);
    expect(() => new AllowList(['10.0.0.0/40'])).to.throw(InputError);
  });
});
