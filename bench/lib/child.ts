import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

/**
 * Benchmark child processes: a TypeScript file forked with the tsx loader and an IPC channel.
 * The parent sends `{id, cmd, args}` and awaits the `{id, ok, value|error}` reply; the child
 * answers with `serveChild(handlers)`. Receiving sides (emulator, WebSocket clients, upstream
 * servers) run in children so the measured process's own CPU and memory are its own.
 */

interface Reply {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

export class Child {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private exited = false;
  readonly exit: Promise<number | null>;

  private constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    this.exit = new Promise((resolve) =>
      proc.once('exit', (code) => {
        this.exited = true;
        for (const p of this.pending.values()) p.reject(new Error(`${name} exited (code ${code}) before answering`));
        this.pending.clear();
        resolve(code);
      }),
    );
    proc.on('message', (m: Reply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.value);
      else p.reject(new Error(`${name}: ${m.error}`));
    });
  }

  /** Forks `file` (a .ts module calling serveChild) and waits until it is listening for commands. */
  static async start(name: string, file: string, opts: { env?: Record<string, string>; execArgv?: string[] } = {}): Promise<Child> {
    const proc = fork(file, [], {
      execArgv: ['--import', 'tsx', ...(opts.execArgv ?? [])],
      env: { ...process.env, ...(opts.env ?? {}) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const child = new Child(name, proc);
    await child.call('ping');
    return child;
  }

  get pid(): number {
    return this.proc.pid!;
  }

  call<T = unknown>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: ${cmd} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v as T)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.proc.send({ id, cmd, args });
    });
  }

  /** Asks the child to clean up and exit; kills it (this pid only) if it does not within `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.exited) return;
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    try {
      await this.call('stop', {}, graceMs).catch(() => undefined);
      await this.exit;
    } finally {
      clearTimeout(timer);
    }
  }
}

export type Handlers = Record<string, (args: Record<string, unknown>) => unknown>;

/** The child side: answers commands; `stop` runs `handlers.stop` (if any), replies, then exits. */
export function serveChild(handlers: Handlers): void {
  process.on('message', async (m: { id: number; cmd: string; args: Record<string, unknown> }) => {
    const reply = (r: Omit<Reply, 'id'>) => process.send?.({ id: m.id, ...r });
    try {
      if (m.cmd === 'ping') return reply({ ok: true, value: process.pid });
      const h = handlers[m.cmd];
      if (!h && m.cmd !== 'stop') throw new Error(`unknown command ${m.cmd}`);
      const value = h ? await h(m.args ?? {}) : undefined;
      reply({ ok: true, value });
      if (m.cmd === 'stop') setTimeout(() => process.exit(0), 20);
    } catch (err) {
      reply({ ok: false, error: (err as Error).stack ?? String(err) });
    }
  });
  // The parent died: don't linger as an orphan holding thousands of sockets.
  process.on('disconnect', () => process.exit(0));
}

/** Clock ticks per second of /proc/PID/stat's utime/stime (USER_HZ; 100 on Linux everywhere in practice). */
const CLK_TCK = 100;

/** Resident set size of a process, from /proc/PID/status (VmRSS, kB). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** User + system CPU seconds a process has used, from /proc/PID/stat (fields 14 and 15). */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces; the fields after its closing paren are fixed.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
}

/** This process's own CPU seconds (user + system) since `start`. */
export function ownCpuSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1e6;
}

/** Peak resident set size of a process so far, from /proc/PID/status (VmHWM, kB). */
export function peakRssBytes(pid: number): number {
  const m = /VmHWM:\s+(\d+)\s+kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}
