import fs from 'node:fs';
import { Session } from 'node:inspector/promises';

/**
 * In-process CPU profiling of just the measured part of a benchmark (`--profile`): the same
 * V8 profiler `node --cpu-prof` uses, started and stopped around the loop so set-up is left out.
 * The .cpuprofile opens in Chrome DevTools; `summarizeProfile` gives self time by package.
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export class CpuProfiler {
  private readonly session = new Session();

  async start(): Promise<void> {
    this.session.connect();
    await this.session.post('Profiler.enable');
    await this.session.post('Profiler.setSamplingInterval', { interval: 200 });
    await this.session.post('Profiler.start');
  }

  async stop(file: string): Promise<Profile> {
    const { profile } = (await this.session.post('Profiler.stop')) as unknown as { profile: Profile };
    this.session.disconnect();
    fs.writeFileSync(file, JSON.stringify(profile));
    return profile;
  }
}

/** Where a frame's code lives: an npm package, our own folder, node internals, GC, … */
export function bucketOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native/builtin)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1];
  if (url.startsWith('node:')) return url.replace(/^node:(internal\/)?/, 'node:').replace(/\/.*$/, '');
  const own = /\/(lib\/[^/]+|functions|bench|local\/[^/]+)\//.exec(url);
  if (own) return own[1];
  return url;
}

/** Self time per bucket, as a share of all samples (idle excluded). */
export function summarizeProfile(p: Profile, top = 12): { bucket: string; share: number }[] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const counts = new Map<string, number>();
  let total = 0;
  for (const id of p.samples) {
    const n = byId.get(id)!;
    if (n.callFrame.functionName === '(idle)' || n.callFrame.functionName === '(program)') continue;
    const b = bucketOf(n.callFrame.url, n.callFrame.functionName);
    counts.set(b, (counts.get(b) ?? 0) + 1);
    total++;
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([bucket, c]) => ({ bucket, share: Math.round((c / total) * 1000) / 10 }));
}

/** Self time per function (name + file), for the hottest frames. */
export function hottestFunctions(p: Profile, top = 15): { fn: string; share: number }[] {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const counts = new Map<string, number>();
  let total = 0;
  for (const id of p.samples) {
    const n = byId.get(id)!;
    if (n.callFrame.functionName === '(idle)' || n.callFrame.functionName === '(program)') continue;
    const key = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/main\//, '')}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    total++;
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, c]) => ({ fn, share: Math.round((c / total) * 1000) / 10 }));
}
