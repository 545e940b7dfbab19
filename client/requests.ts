import { RealtimeError } from './errors';

/**
 * Publishes and application actions waiting for their answer (`published` / `accepted`, or an
 * error carrying the same `id`). Every request has an id (the caller's, or a generated one), so
 * a request whose answer was lost with its socket is sent again, unchanged, on the next socket:
 * the server's idempotency table turns a repeated publish into its first seq, and an application
 * action's consumer can drop a repeated id (SQS standard queues are at-least-once anyway).
 */
export interface PendingRequest {
  readonly id: string;
  /** The frame, serialised once: a re-send is byte-identical. */
  readonly text: string;
  resolve(value: unknown): void;
  reject(err: RealtimeError): void;
}

export class RequestLedger {
  private readonly pending = new Map<string, PendingRequest>();

  add(req: PendingRequest): void {
    if (this.pending.has(req.id)) {
      req.reject(new RealtimeError('duplicate_id', `a request with id "${req.id}" is already waiting for its answer`));
      return;
    }
    this.pending.set(req.id, req);
  }

  /** Frames to (re-)send on a socket that just opened, in the order they were made. */
  frames(): string[] {
    return [...this.pending.values()].map((r) => r.text);
  }

  settle(id: string | undefined, outcome: { value: unknown } | { error: RealtimeError }): boolean {
    const req = id === undefined ? undefined : this.pending.get(id);
    if (!req) return false;
    this.pending.delete(req.id);
    if ('error' in outcome) req.reject(outcome.error);
    else req.resolve(outcome.value);
    return true;
  }

  rejectAll(err: RealtimeError): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const r of all) r.reject(err);
  }
}
