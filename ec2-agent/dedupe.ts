import { createHash } from 'node:crypto';
import type { WriteClaim } from '../lib/stores/items';
import { IdempotencyStore } from '../lib/stores/idempotency';
import { valueAtPath } from '../lib/upstream/headers';
import type { DecodedFrame } from './frames';

/**
 * The dedupe key of each message of a redundant socket (both slots' agents derive the same key
 * for the same upstream message), as a row of the idempotency table written in the message's
 * own transaction (lib/stores/idempotency.ts): whichever agent writes first persists it, the
 * other's transaction is refused and counted as a duplicate.
 *
 * - With a `dedupe-path`: the platform's message id found there (remembered `byId`'s window).
 *   A message without one falls back to its content.
 * - Otherwise its content: a SHA-256 of the frame, plus how many times this socket has carried
 *   that exact content within the window (1, 2, …). Both agents see the same stream in the same
 *   order, so the n-th copy of a repeated message gets the same key on both, and a platform that
 *   legitimately repeats a message (the same "status ok" twice) still has both persisted.
 *   Limit: an agent that joins mid-stream counts from 1; a repeat of content the other agent saw
 *   within the window can then be taken for a duplicate (docs/upstream-connectors.md).
 */
export class DedupeKeys {
  private readonly seen = new Map<string, { n: number; last: number }>();

  constructor(
    private readonly o: {
      /** The socket (both slots share it: the base id). */
      readonly socketId: string;
      readonly topic: string;
      readonly path?: string;
      readonly byId: IdempotencyStore;
      readonly byContent: IdempotencyStore;
      readonly clock: () => number;
    },
  ) {}

  claimFor(frame: DecodedFrame): WriteClaim {
    const content = createHash('sha256')
      .update(frame.text ?? JSON.stringify(frame.data))
      .digest('base64url');
    const scope = `upstream:${this.o.socketId}`;
    const id = this.o.path === undefined ? undefined : valueAtPath(frame.data, this.o.path);
    if (id !== undefined) return this.o.byId.claim(IdempotencyStore.key(scope, this.o.topic, `id:${id}`), this.o.topic, content);
    return this.o.byContent.claim(IdempotencyStore.key(scope, this.o.topic, `hash:${content}:${this.occurrence(content)}`), this.o.topic, content);
  }

  private occurrence(content: string): number {
    const now = this.o.clock();
    const windowMs = this.o.byContent.windowSeconds * 1000;
    if (this.seen.size > 10_000) for (const [k, v] of this.seen) if (now - v.last > windowMs) this.seen.delete(k);
    const prev = this.seen.get(content);
    const n = prev && now - prev.last <= windowMs ? prev.n + 1 : 1;
    this.seen.set(content, { n, last: now });
    return n;
  }
}
