/** A plain-text table for the terminal: right-aligned numbers, left-aligned text. */
export type Cell = string | number | undefined;

export function formatTable(title: string, header: readonly string[], rows: readonly Cell[][]): string {
  const text = (c: Cell) => (c === undefined ? '—' : typeof c === 'number' ? fmt(c) : c);
  const cells = [header.map(String), ...rows.map((r) => r.map(text))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[], src?: Cell[]) =>
    r.map((c, i) => (src && typeof src[i] === 'number' ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  const out = [`\n${title}`, line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  ')];
  rows.forEach((r, i) => out.push(line(cells[i + 1], r)));
  return out.join('\n');
}

function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  const abs = Math.abs(n);
  return n.toLocaleString('en-US', { maximumFractionDigits: abs >= 100 ? 0 : abs >= 1 ? 2 : 4 });
}

export function printTable(title: string, header: readonly string[], rows: readonly Cell[][]): void {
  console.log(formatTable(title, header, rows));
}
