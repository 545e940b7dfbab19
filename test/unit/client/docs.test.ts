import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import * as pkg from '../../../client/index';
import type { ClientEvents, ConnectOptions, RealtimeClient, RealtimeError, Subscription, TopicTracker } from '../../../client/index';

/**
 * docs/client.md is the package's reference: it must name every public member, event, option,
 * export and error code of the client. The member lists are checked by the compiler against the
 * classes (a member added to RealtimeClient without an entry here does not type-check), and each
 * name must then appear in the page as code (`name` or `name(`).
 */

const ROOT = path.resolve(import.meta.dirname, '../../..');
const DOC = fs.readFileSync(path.join(ROOT, 'docs/client.md'), 'utf8');

/** Every public key of `T`, exactly: a missing or an extra key is a type error. */
function keysOf<T>(keys: { readonly [K in keyof Required<T>]: true }): string[] {
  return Object.keys(keys);
}

const documented = (name: string) => DOC.includes(`\`${name}\``) || DOC.includes(`\`${name}(`);
const undocumented = (names: readonly string[]) => names.filter((n) => !documented(n));

/** Codes the client itself raises: every `new RealtimeError('code'` under client/. */
function clientErrorCodes(): string[] {
  const codes = new Set<string>();
  const dir = path.join(ROOT, 'client');
  for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
    for (const m of fs.readFileSync(path.join(dir, f), 'utf8').matchAll(/new RealtimeError\(\s*'([a-z_]+)'/g)) codes.add(m[1]!);
  }
  return [...codes].sort();
}

describe('docs/client.md covers the whole public API of @realtime-gateway/client', () => {
  it('every member of the client (methods, getters, listener methods)', () => {
    const members = keysOf<RealtimeClient>({
      url: true,
      state: true,
      topics: true,
      lastSeq: true,
      duplicates: true,
      whenOpen: true,
      subscribe: true,
      unsubscribe: true,
      publish: true,
      send: true,
      presence: true,
      close: true,
      on: true,
      off: true,
      listenerCount: true,
    });
    expect(undocumented(members)).to.deep.equal([]);
    expect(undocumented(keysOf<Subscription>({ topic: true, unsubscribe: true }))).to.deep.equal([]);
  });

  it('every event a listener can subscribe to', () => {
    const events = keysOf<ClientEvents>({ state: true, snapshot: true, event: true, error: true, message: true, pong: true, rotated: true, join: true, leave: true });
    expect(undocumented(events)).to.deep.equal([]);
  });

  it('every connect option', () => {
    const options = keysOf<ConnectOptions>({
      token: true,
      userId: true,
      topics: true,
      params: true,
      tokenIn: true,
      protocol: true,
      WebSocket: true,
      backoff: true,
      maxAttempts: true,
      connectTimeoutMs: true,
      pingIntervalMs: true,
      pongTimeoutMs: true,
      rotateAfterMs: true,
      rotateJitterMs: true,
      rotateOverlapMs: true,
      subscribeTimeoutMs: true,
      gapTimeoutMs: true,
      maxBuffered: true,
      timers: true,
      random: true,
    });
    expect(undocumented(options)).to.deep.equal([]);
  });

  it('every value the package exports, and the members of its exported classes', () => {
    expect(undocumented(Object.keys(pkg))).to.deep.equal([]);
    const tracker = keysOf<TopicTracker>({ topic: true, duplicates: true, lastSeq: true, buffered: true, needsResync: true, takeOverflow: true, accept: true });
    expect(undocumented(tracker)).to.deep.equal([]);
    const error = keysOf<Omit<RealtimeError, keyof Error>>({ code: true, topic: true, retryAfterMs: true });
    expect(undocumented(error.map((k) => `err.${k}`))).to.deep.equal([]);
  });

  it('every error code the client raises itself', () => {
    const codes = clientErrorCodes();
    expect(codes).to.include.members(['closed', 'invalid_option', 'subscribe_retry']); // the scan finds them
    expect(undocumented(codes)).to.deep.equal([]);
  });
});
