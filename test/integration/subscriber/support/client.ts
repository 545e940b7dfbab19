import WebSocket from 'ws';

/**
 * A real `ws` subscriber for tests: collects every JSON frame and lets a test wait for a
 * condition on them. It applies the protocol's client rule (see `apply`) and records the seqs
 * it applied in `applied[topic]`, so tests can assert "contiguous and ordered".
 */

export type Frame = Record<string, unknown> & { type: string };

export class TestClient {
  readonly frames: Frame[] = [];
  readonly applied = new Map<string, number[]>();
  private readonly lastSeq = new Map<string, number>();
  /** Topics with a subscribe in flight, and the live event seqs held back meanwhile. */
  private readonly pending = new Map<string, number[]>();
  private waiters: (() => void)[] = [];
  closed = false;
  closeCode?: number;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (raw) => {
      const f = JSON.parse(raw.toString()) as Frame;
      this.frames.push(f);
      this.apply(f);
      this.wake();
    });
    ws.on('close', (code) => {
      this.closed = true;
      this.closeCode = code;
      this.wake();
    });
  }

  static connect(url: string, opts: { protocols?: string | string[]; headers?: Record<string, string> } = {}): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, opts.protocols ?? [], { headers: opts.headers });
      const c = new TestClient(ws);
      ws.once('open', () => resolve(c));
      ws.once('unexpected-response', (_req, res) => {
        reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode }));
        res.resume();
        ws.terminate();
      });
      ws.once('error', reject);
    });
  }

  /** Resolves with the HTTP status of a refused upgrade; fails if the upgrade succeeds. */
  static async refusedStatus(url: string, opts: { protocols?: string | string[]; headers?: Record<string, string> } = {}): Promise<number> {
    try {
      const c = await TestClient.connect(url, opts);
      await c.close();
    } catch (err) {
      const s = (err as { status?: number }).status;
      if (s) return s;
      throw err;
    }
    throw new Error('the upgrade was accepted');
  }

  get protocol(): string {
    return this.ws.protocol;
  }

  /**
   * Sends one message; above 32 KB it is split into continuation frames, because API Gateway
   * closes the connection (1009) on any single frame over 32 KB.
   */
  send(obj: unknown): void {
    if (obj && typeof obj === 'object' && (obj as { action?: unknown }).action === 'subscribe') {
      const t = (obj as { topic?: unknown }).topic;
      if (typeof t === 'string' && !this.pending.has(t)) this.pending.set(t, []);
    }
    const text = typeof obj === 'string' ? obj : JSON.stringify(obj);
    const buf = Buffer.from(text, 'utf8');
    const FRAME = 32 * 1024;
    if (buf.length <= FRAME) return this.ws.send(text);
    for (let i = 0; i < buf.length; i += FRAME) {
      this.ws.send(buf.subarray(i, i + FRAME), { binary: false, fin: i + FRAME >= buf.length });
    }
  }

  /**
   * The client rule of docs/subscriber-protocol.md: between sending `subscribe` and its reply
   * (a snapshot, or `subscribed` after a replay), events of that topic, live and replayed (a
   * replay posts the frames of a page in parallel, so they may arrive out of order), are held
   * back; the reply sets the baseline, then held events with a higher seq are applied in seq
   * order. After that, any seq ≤ the last applied is a duplicate and dropped.
   */
  private apply(f: Frame) {
    const topic = typeof f.topic === 'string' ? f.topic : undefined;
    if (!topic) return;
    const held = this.pending.get(topic);
    if (f.type === 'event' && typeof f.seq === 'number') {
      if (held) {
        held.push(f.seq);
        return;
      }
      this.applySeq(topic, f.seq);
      return;
    }
    if (f.type === 'snapshot' && typeof f.seq === 'number') {
      if (f.reset === true || (this.lastSeq.get(topic) ?? -1) < f.seq) {
        this.lastSeq.set(topic, f.seq);
        const list = f.reset === true ? [] : (this.applied.get(topic) ?? []);
        list.push(f.seq);
        this.applied.set(topic, list);
      }
      this.flush(topic);
      return;
    }
    if (f.type === 'subscribed' || (f.type === 'error' && held)) this.flush(topic);
  }

  private applySeq(topic: string, seq: number) {
    if (seq <= (this.lastSeq.get(topic) ?? -1)) return;
    this.lastSeq.set(topic, seq);
    let list = this.applied.get(topic);
    if (!list) this.applied.set(topic, (list = []));
    list.push(seq);
  }

  private flush(topic: string) {
    const held = this.pending.get(topic);
    this.pending.delete(topic);
    for (const seq of (held ?? []).sort((a, b) => a - b)) this.applySeq(topic, seq);
  }

  private wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits until `pred(frames)` is true; rejects after `timeoutMs` with what was received. */
  async waitFor(pred: (frames: Frame[]) => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.frames)) {
      const left = deadline - Date.now();
      if (left <= 0 || this.closed) {
        throw new Error(`timed out waiting for ${what}; closed=${this.closed}; last frames: ${JSON.stringify(this.frames.slice(-5))}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Sends a frame and waits for the next frame of `type` after it. */
  async request(obj: unknown, type: string | string[], timeoutMs = 5000): Promise<Frame> {
    const types = Array.isArray(type) ? type : [type];
    const start = this.frames.length;
    this.send(obj);
    let found: Frame | undefined;
    await this.waitFor(
      (fs) => (found = fs.slice(start).find((f) => types.includes(f.type))) !== undefined,
      timeoutMs,
      `a ${types.join('/')} frame`,
    );
    return found!;
  }

  ofType(type: string): Frame[] {
    return this.frames.filter((f) => f.type === type);
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close();
    });
  }

  /** Drops the TCP connection without a close frame (a vanished client). */
  terminate(): void {
    this.ws.terminate();
  }
}
