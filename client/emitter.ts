/** A minimal typed event emitter (no Node `events` import, so the SDK bundles for browsers). */
export class Emitter<M extends { [K in keyof M]: (...args: any[]) => void }> {
  private readonly listeners: { [K in keyof M]?: Set<M[K]> } = {};

  on<K extends keyof M>(event: K, fn: M[K]): () => void {
    (this.listeners[event] ??= new Set()).add(fn);
    return () => this.off(event, fn);
  }

  off<K extends keyof M>(event: K, fn: M[K]): void {
    this.listeners[event]?.delete(fn);
  }

  listenerCount<K extends keyof M>(event: K): number {
    return this.listeners[event]?.size ?? 0;
  }

  /** Calls every listener; a throwing listener is reported to `onThrow` and does not stop the others. */
  protected emitSafely<K extends keyof M>(event: K, args: Parameters<M[K]>, onThrow: (err: unknown) => void): void {
    for (const fn of [...(this.listeners[event] ?? [])]) {
      try {
        fn(...args);
      } catch (err) {
        onThrow(err);
      }
    }
  }
}
