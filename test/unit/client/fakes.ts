import type { Timers } from '../../../client/timers';
import type { WebSocketLike } from '../../../client/transport';

/** Hand-driven time: `advance(ms)` runs due timers in order. */
export class ManualTimers implements Timers {
  private t = 1_000_000;
  private nextId = 1;
  private readonly due = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.due.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.due.delete(h as number);
  }
  get pending(): number {
    return this.due.size;
  }
  /** Delays of the pending timers from now, sorted. */
  delays(): number[] {
    return [...this.due.values()].map((d) => d.at - this.t).sort((a, b) => a - b);
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.due) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.due.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}

/** A WebSocket stand-in the test drives: `open()`, `receive(obj)`, `drop(code)`; records `sent`. */
export class FakeSocket implements WebSocketLike {
  static instances: FakeSocket[] = [];
  readyState = 0;
  protocol = '';
  readonly sent: any[] = [];
  closedWith?: { code?: number; reason?: string };
  onopen: ((ev: any) => void) | null = null;
  onmessage: ((ev: any) => void) | null = null;
  onclose: ((ev: any) => void) | null = null;
  onerror: ((ev: any) => void) | null = null;

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    FakeSocket.instances.push(this);
  }
  static reset(): void {
    FakeSocket.instances = [];
  }
  static last(): FakeSocket {
    return FakeSocket.instances[FakeSocket.instances.length - 1];
  }
  send(data: string): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(JSON.parse(data));
  }
  close(code?: number, reason?: string): void {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }
  open(protocol = ''): void {
    this.readyState = 1;
    this.protocol = protocol;
    this.onopen?.({});
  }
  receive(msg: unknown): void {
    this.onmessage?.({ data: typeof msg === 'string' ? msg : JSON.stringify(msg) });
  }
  /** The server (or the network) ends the connection. */
  drop(code = 1006, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  sentActions(): string[] {
    return this.sent.map((m) => (m.action === 'subscribe' && m.sinceSeq !== undefined ? `subscribe ${m.topic} since ${m.sinceSeq}` : `${m.action}${m.topic ? ' ' + m.topic : ''}`));
  }
}

/** Lets pending promise callbacks (token resolution) run. */
export const flush = () => new Promise<void>((r) => setImmediate(r));
