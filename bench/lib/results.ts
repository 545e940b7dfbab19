import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * bench/results/latest.json: one object per benchmark section, plus when, where and how it ran,
 * so runs can be compared over time. Sections a run skipped keep their previous values and say so
 * (`stale: true`), rather than vanishing from the file.
 */

export const RESULTS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'results');
export const LATEST = path.join(RESULTS_DIR, 'latest.json');

export type Section = Record<string, unknown>;

export function writeResults(sections: Record<string, Section>, meta: { quick: boolean; argv: string[]; wallSeconds: number }): string {
  let previous: Record<string, Section> = {};
  try {
    previous = JSON.parse(fs.readFileSync(LATEST, 'utf8')) as Record<string, Section>;
  } catch {
    // first run, or an unreadable file: start afresh
  }
  const out: Record<string, unknown> = {
    meta: {
      date: new Date().toISOString(),
      command: `npm run bench${meta.argv.length ? ' -- ' + meta.argv.join(' ') : ''}`,
      quick: meta.quick,
      wallSeconds: meta.wallSeconds,
      node: process.version,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
    },
  };
  for (const [k, v] of Object.entries(previous)) if (k !== 'meta' && !(k in sections)) out[k] = { ...v, stale: true };
  Object.assign(out, sections);
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  fs.writeFileSync(LATEST, JSON.stringify(out, null, 2) + '\n');
  return LATEST;
}
