import uPlot from 'uplot';
import { SeriesWindow } from './series';

/**
 * The topic view's live chart (uPlot, bundled into the page: no CDN at run time): every numeric
 * field of the topic's data on the left axis, the delivery latency on the right one. Rebuilt when
 * a new field appears, otherwise only fed new data.
 */

const PALETTE = ['#58a6ff', '#3fb950', '#d29922', '#f778ba', '#a371f7', '#79c0ff', '#56d364', '#ffa657'];
const LATENCY_COLOR = '#f85149';

export class TopicChart {
  private plot?: uPlot;
  private window = new SeriesWindow();

  constructor(private readonly box: HTMLElement) {
    new ResizeObserver(() => this.plot?.setSize(this.size())).observe(box);
  }

  /** Points plotted, for the page's own status line and for tests. */
  get points(): number {
    return this.window.points.length;
  }

  get fields(): readonly string[] {
    return this.window.fields;
  }

  /** The newest point plotted (diagnostics and tests). */
  lastPoint() {
    return this.window.points.at(-1);
  }

  reset(): void {
    this.plot?.destroy();
    this.plot = undefined;
    this.window = new SeriesWindow();
    this.box.hidden = true;
    this.publish();
  }

  /** Adds one update; returns false when `data` has nothing to plot (the JSON view is enough). */
  add(t: number, data: unknown, latencyMs?: number): boolean {
    const { added, newFields } = this.window.add(t, data, latencyMs);
    if (!added) return false;
    this.box.hidden = false;
    if (newFields || !this.plot) this.rebuild();
    else this.plot.setData(this.window.columns() as uPlot.AlignedData);
    this.publish();
    return true;
  }

  private size() {
    return { width: Math.max(320, this.box.clientWidth - 4), height: 260 };
  }

  private rebuild(): void {
    this.plot?.destroy();
    const series: uPlot.Series[] = [
      {},
      ...this.window.fields.map((f, i) => ({ label: f, stroke: PALETTE[i % PALETTE.length], width: 1.5, scale: 'v', spanGaps: true })),
      { label: 'latency ms', stroke: LATENCY_COLOR, width: 1, dash: [4, 3], scale: 'ms', spanGaps: true },
    ];
    const axis = { stroke: '#8a98a5', grid: { stroke: '#26323d', width: 1 }, ticks: { stroke: '#26323d', width: 1 } };
    this.plot = new uPlot(
      {
        ...this.size(),
        series,
        scales: { x: { time: true }, v: { auto: true }, ms: { auto: true } },
        axes: [axis, { ...axis, scale: 'v' }, { ...axis, scale: 'ms', side: 1, grid: { show: false }, label: 'latency ms' }],
        legend: { live: true },
        cursor: { drag: { x: false, y: false } },
      },
      this.window.columns() as uPlot.AlignedData,
      this.box,
    );
  }

  private publish(): void {
    this.box.dataset.points = String(this.window.points.length);
    this.box.dataset.fields = this.window.fields.join(',');
  }
}
