import { expect } from 'chai';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createDashboardHandler } from '../../local/dashboard/serve';
import { startTestStack, type LocalStack } from '../support/stack';
import { waitFor } from '../integration/client/helpers';
import { DeleteConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { ADMIN_PRINCIPAL } from '../../local/iam/principals';
import { startUpstream, type UpstreamServer } from '../integration/upstream/harness';
import { startDemo, type Demo } from '../../local/demo/demo';
import { numericFields } from '../../local/dashboard/series';

/**
 * The dashboard in a real headless Chromium (Debian's `chromium` package, driven by
 * playwright-core; .ci/run installs it): served by the local stack's HTTP server, connected
 * through the client package's built browser bundle to the WebSocket emulator.
 */

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const OUT = path.resolve(import.meta.dirname, '../../test-output/e2e');

describe('dashboard in headless Chromium', function () {
  this.timeout(60_000);
  let stack: LocalStack;
  let browser: Browser;
  let page: Page;
  let dashboardUrl: string;
  let upstream: UpstreamServer;
  let demo: Demo | undefined;

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium), as .ci/run does`);
    }
    fs.mkdirSync(OUT, { recursive: true });
    // The handler the stack mounts; the config is read per request because URLs exist only after start.
    const handler = createDashboardHandler(() => ({ websocketUrl: stack.endpoints.websocketUrl, httpUrl: stack.endpoints.httpUrl }));
    upstream = await startUpstream();
    stack = await startTestStack({
      mounts: [handler],
      // Fast health checks, so the upstream view has a real lastHealthyAt within about a second.
      withAgent: { leaseMs: 3000, renewMs: 500, reconcileMs: 500, healthIntervalMs: 1000, pingTimeoutMs: 900, commandWaitSeconds: 1 },
    });
    dashboardUrl = stack.endpoints.dashboardUrl ?? `${stack.endpoints.httpUrl}/dashboard/`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
  });
  beforeEach(async () => {
    page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
    page.on('pageerror', (e) => console.error('page error:', e.message));
  });
  afterEach(async () => {
    await page?.close();
  });
  after(async () => {
    await demo?.stop();
    await browser?.close();
    await stack?.stop();
    await upstream?.stop();
  });

  const publish = async (topic: string, data: unknown) => {
    const r = await fetch(`${stack.endpoints.httpUrl}/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ topic, data }),
    });
    expect(r.status, await r.clone().text()).to.be.oneOf([200, 201, 202]);
    return (await r.json()) as { seq: number };
  };

  it('publishes from the page\'s own socket: the answer names the seq and the event comes back to the topic view', async () => {
    const topic = `chat:e2e-${randomBytes(2).toString('hex')}`;
    await page.goto(`${dashboardUrl}?topic=${encodeURIComponent(topic)}`);
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'open', undefined, { timeout: 10_000 });
    await page.click('details summary');
    await page.fill('#publish-data', '{"from":"the socket"}');
    await page.check('#publish-socket');
    await page.click('#publish-form button[type=submit]');
    await page.waitForFunction(() => document.getElementById('errors')?.textContent?.includes('published from the socket at seq 1'), undefined, { timeout: 10_000 });
    await page.waitForSelector('#latest[data-seq="1"]', { timeout: 10_000 });
    expect(JSON.parse((await page.textContent('#latest'))!)).to.deep.equal({ from: 'the socket' });
  });

  it('?topic=NAME watches at once and shows a published update within 2 s (screenshot written)', async () => {
    const topic = `vehicleId:e2e-${randomBytes(2).toString('hex')}`;
    await publish(topic, { lat: 40.41, lon: -3.7, speed: 12 });
    await page.goto(`${dashboardUrl}?topic=${encodeURIComponent(topic)}`);
    await page.waitForSelector('#latest[data-seq="1"]', { timeout: 10_000 });
    expect(await page.textContent('#state')).to.equal('open');
    expect(JSON.parse((await page.textContent('#latest'))!)).to.deep.equal({ lat: 40.41, lon: -3.7, speed: 12 });

    const marker = `moved-${randomBytes(3).toString('hex')}`;
    const t0 = Date.now();
    await publish(topic, { lat: 40.42, lon: -3.69, speed: 33, marker });
    await page.waitForFunction((m) => document.getElementById('latest')?.textContent?.includes(m), marker, { timeout: 2000 });
    const elapsed = Date.now() - t0;
    expect(elapsed).to.be.below(2000);

    const latest = JSON.parse((await page.textContent('#latest'))!);
    expect(latest).to.deep.equal({ lat: 40.42, lon: -3.69, speed: 33, marker });
    expect(await page.getAttribute('#latest', 'data-seq')).to.equal('2');
    expect(await page.textContent('#cur-seq')).to.equal('2');
    // The event log row: seq 2 with a latency figure.
    const row = await page.$$eval('#events tr:first-child td', (tds) => tds.map((t) => t.textContent));
    expect(row[0]).to.equal('2');
    expect(row[2]).to.match(/^\d+ ms$/);
    expect(new URL(page.url()).searchParams.get('topic')).to.equal(topic);

    const shot = path.join(OUT, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(fs.statSync(shot).size).to.be.greaterThan(5000);
    console.log(`      update shown ${elapsed} ms after publish; screenshot ${path.relative(process.cwd(), shot)}`);
  });

  it('keeps showing updates after the server kills its connection (reconnect + resume in the browser)', async () => {
    const topic = `batteryId:e2e-${randomBytes(2).toString('hex')}`;
    await page.goto(`${dashboardUrl}?topic=${encodeURIComponent(topic)}`);
    await page.waitForSelector('#latest[data-seq="0"]', { timeout: 10_000 });
    // The previous test's page may still be closing its socket.
    await waitFor(() => stack.websocket.connectionIds().length === 1, 5000, 'only this page connected');
    const ids = stack.websocket.connectionIds();
    // As a backend would: the SDK, signed as a principal allowed to DELETE (the local admin).
    await stack.clientsFor(ADMIN_PRINCIPAL).management(stack.endpoints.managementUrl).send(new DeleteConnectionCommand({ ConnectionId: ids[0]! }));
    await publish(topic, { state_of_charge: 71.5 }); // while the page is disconnected
    await publish(topic, { state_of_charge: 71.4 });
    await page.waitForSelector('#latest[data-seq="2"]', { timeout: 5000 });
    expect(JSON.parse((await page.textContent('#latest'))!)).to.deep.equal({ state_of_charge: 71.4 });
    const seqs = await page.$$eval('#events tr td:first-child', (tds) => tds.map((t) => t.textContent));
    expect(seqs).to.deep.equal(['2', '1']);
  });

  it('the upstream view lists sockets from the control API with isActive, countErr and lastHealthyAt', async () => {
    // A socket the agent really holds: connected to a loopback upstream and health-checked.
    const internalID = `e2e-${randomBytes(3).toString('hex')}`;
    const ids = { internalID, interWorkingInterface: upstream.url, platformID: 'e2e-platform' };
    const control = (method: string, extra: Record<string, string> = {}) =>
      fetch(`${stack.endpoints.httpUrl}/websocket`, { method, headers: { ...ids, ...extra } });
    const r = await control('POST', { asapa_email: 'e2e@example.com', asapa_pass: 'not-logged-anywhere', topic: `platform:${internalID}` });
    const opened = (await r.json()) as { socketId: string };
    expect(r.status, JSON.stringify(opened)).to.equal(202);
    type Row = { status: string; isActive: boolean; countErr: number; lastHealthyAt: string | null };
    let healthy: Row | undefined;
    await waitFor(async () => {
      const row = (await (await control('GET')).json()) as Row;
      if (row.isActive && row.lastHealthyAt) healthy = row;
      return healthy !== undefined;
    }, 15_000);
    // And one that cannot connect (nothing listens on port 1): the agent counts its errors.
    const brokenId = `e2e-broken-${randomBytes(3).toString('hex')}`;
    const broken = { internalID: brokenId, interWorkingInterface: 'ws://127.0.0.1:1/', platformID: 'e2e-platform' };
    const brokenControl = (method: string, extra: Record<string, string> = {}) =>
      fetch(`${stack.endpoints.httpUrl}/websocket`, { method, headers: { ...broken, ...extra } });
    const rb = await brokenControl('POST', { asapa_email: 'e2e@example.com', asapa_pass: 'x', topic: `platform:${brokenId}` });
    const brokenSocket = (await rb.json()) as { socketId: string };
    expect(rb.status, JSON.stringify(brokenSocket)).to.equal(202);
    await waitFor(async () => ((await (await brokenControl('GET')).json()) as Row).countErr > 0, 15_000, 'the broken socket to count an error');

    await page.goto(`${dashboardUrl}?view=upstreams`);
    const brokenRow = await page.waitForSelector(`#upstreams tr[data-socket-id="${brokenSocket.socketId}"].unhealthy`, { timeout: 5000 });
    expect(await brokenRow.getAttribute('title')).to.match(/consecutive error|failed/);
    expect(await brokenRow.$eval('td:last-child', (td) => td.textContent)).to.equal('never');
    expect(await page.textContent('#up-summary')).to.match(/^\d+ of \d+ unhealthy$/);
    const row = await page.waitForSelector(`#upstreams tr[data-socket-id="${opened.socketId}"]`, { timeout: 5000 });
    expect(await row.getAttribute('class') ?? '').to.not.include('unhealthy');
    expect(await row.$eval('td:last-child', (td) => td.textContent)).to.match(/^\d+ s ago$/);
    const cells = await row.$$eval('td', (tds) => tds.map((t) => t.textContent));
    const shownAt = Date.now();
    expect(cells.slice(0, 6)).to.deep.equal(['e2e-platform', internalID, `platform:${internalID}`, 'open', 'true', '0']);
    // The page's own read of the row: the health check seen above or a later one.
    expect(cells[6]).to.match(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    expect(Date.parse(cells[6]!)).to.be.within(Date.parse(healthy!.lastHealthyAt!), shownAt);
    expect(await page.content()).to.not.include('not-logged-anywhere');
    await page.screenshot({ path: path.join(OUT, 'dashboard-upstreams.png'), fullPage: true });
    await control('DELETE'); // the agent lets go of the socket before the stack stops
    await brokenControl('DELETE');
  });

  it('charts the demo battery live: after a few seconds the chart holds every point received, each numeric field plus the latency (screenshot written)', async () => {
    demo = await startDemo({ httpUrl: stack.endpoints.httpUrl, intervalMs: 250, batteries: 1, vehicles: 0 });
    const topic = demo.topics[0]!;
    expect(topic).to.equal('batteryId:1');
    await page.goto(`${dashboardUrl}?topic=${encodeURIComponent(topic)}`);
    await page.waitForFunction(() => Number(document.getElementById('ev-count')?.textContent) >= 10, undefined, { timeout: 30_000 });

    // One synchronous read of the page: what the chart holds next to what the page received.
    const seen = await page.evaluate(() => {
      const chart = (window as unknown as { dashboardChart: { points: number; fields: string[] } }).dashboardChart;
      const box = document.getElementById('chart')!;
      return {
        points: chart.points,
        fields: [...chart.fields],
        dataPoints: Number(box.dataset.points),
        events: Number(document.getElementById('ev-count')!.textContent),
        latest: JSON.parse(document.getElementById('latest')!.textContent!) as Record<string, unknown>,
        last: (window as unknown as { dashboardChart: { lastPoint(): unknown } }).dashboardChart.lastPoint(),
        canvases: box.querySelectorAll('canvas').length,
        hidden: box.hidden,
      };
    });
    // Every event is a point; the snapshot is one more when the battery had data already.
    expect(seen.points).to.be.within(seen.events, seen.events + 1);
    expect(seen.dataPoints).to.equal(seen.points);
    expect(seen.fields).to.include.members(['voltage', 'current', 'temperature', 'state_of_charge']);
    expect(seen.fields).to.not.include('timestamp');
    expect(seen.last).to.deep.include({ values: numericFields(seen.latest) });
    expect((seen.last as { latencyMs?: number }).latencyMs).to.be.a('number');
    expect(seen.hidden).to.equal(false);
    expect(seen.canvases).to.equal(1);
    // The legend names each series as plotted.
    const legend = await page.$$eval('#chart .u-legend .u-label', (ls) => ls.map((l) => l.textContent));
    expect(legend).to.include.members(['voltage', 'current', 'temperature', 'state_of_charge', 'latency ms']);

    const shot = path.join(OUT, 'dashboard-chart.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(fs.statSync(shot).size).to.be.greaterThan(5000);
    console.log(`      chart: ${seen.points} points for ${seen.events} events (${seen.fields.join(', ')}); screenshot ${path.relative(process.cwd(), shot)}`);
    await demo.stop();
    demo = undefined;
  });

  it('keeps the JSON view and no chart for data without numbers', async () => {
    const topic = `chat:e2e-${randomBytes(2).toString('hex')}`;
    await publish(topic, { text: 'hello', tags: ['a'] });
    await page.goto(`${dashboardUrl}?topic=${encodeURIComponent(topic)}`);
    await page.waitForSelector('#latest[data-seq="1"]', { timeout: 10_000 });
    await publish(topic, { text: 'again' });
    await page.waitForSelector('#latest[data-seq="2"]', { timeout: 10_000 });
    expect(JSON.parse((await page.textContent('#latest'))!)).to.deep.equal({ text: 'again' });
    expect(await page.$eval('#chart', (c) => ({ hidden: (c as HTMLElement).hidden, points: (c as HTMLElement).dataset.points }))).to.deep.equal({ hidden: true, points: '0' });
  });
});
