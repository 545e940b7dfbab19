import { expect } from 'chai';
import { WebSocket } from 'ws';
import { startDemoPlatform, type DemoPlatform } from '../../../local/demo/platform';
import { initialBattery, initialVehicle, nextBattery, nextVehicle } from '../../../local/demo/generators';

/** The demo's sample upstream platform on a real loopback socket. */
describe('demo upstream platform', () => {
  let platform: DemoPlatform;
  const creds = { email: 'demo@example.com', pass: 's3cret:with:colons' };
  const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
  before(async () => {
    platform = await startDemoPlatform({ credentials: creds, intervalMs: 40, batteries: 2, vehicles: 1 });
  });
  after(async () => {
    await platform?.stop();
  });

  const open = (path: string, auth?: string) =>
    new Promise<{ ws?: WebSocket; status?: number }>((resolve) => {
      const ws = new WebSocket(`${platform.url}${path}`, { headers: auth ? { authorization: auth } : {} });
      ws.once('open', () => resolve({ ws }));
      ws.once('unexpected-response', (_req, res) => {
        resolve({ status: res.statusCode });
        ws.terminate();
      });
      ws.once('error', () => {});
    });

  it('offers one stream per battery and vehicle, on item-key topics', () => {
    expect(platform.streams.map((s) => `${s.path} ${s.topic}`)).to.deep.equal([
      '/battery/1 batteryId:1',
      '/battery/2 batteryId:2',
      '/vehicle/1 vehicleId:1',
    ]);
  });

  it('refuses the upgrade without, or with wrong, Basic credentials (401) and unknown paths (404)', async () => {
    expect((await open('/battery/1')).status).to.equal(401);
    expect((await open('/battery/1', basic(creds.email, 'wrong'))).status).to.equal(401);
    expect((await open('/nope', basic(creds.email, creds.pass))).status).to.equal(404);
    expect(platform.connections()).to.equal(0);
  });

  it('streams battery metrics (seed 003 fields) and vehicle positions (seed 002) to authenticated sockets', async () => {
    const b = await open('/battery/2', basic(creds.email, creds.pass));
    const v = await open('/vehicle/1', basic(creds.email, creds.pass));
    const next = (ws: WebSocket) => new Promise<Record<string, unknown>>((r) => ws.once('message', (d) => r(JSON.parse(String(d)))));
    const [bm, vm] = await Promise.all([next(b.ws!), next(v.ws!)]);
    expect(Object.keys(bm).sort()).to.deep.equal(['current', 'state_of_charge', 'state_of_health', 'temperature', 'timestamp', 'voltage']);
    expect(Object.keys(vm).sort()).to.deep.equal(['lat', 'lon', 'speed', 'timestamp', 'vehicleId']);
    expect(vm.vehicleId).to.equal('1');
    expect(bm.timestamp).to.be.closeTo(Date.now(), 2000);
    expect(platform.connections()).to.equal(2);
    b.ws!.close();
    v.ws!.close();
  });

  it('generators stay within physical bounds and move vehicles at their speed', () => {
    let bat = initialBattery(1, () => 0.5);
    for (let i = 0; i < 2000; i++) bat = nextBattery(bat, i, Math.random);
    expect(bat.voltage).to.be.within(110, 150);
    expect(bat.state_of_charge).to.be.within(0, 100);
    const v0 = { ...initialVehicle(1, () => 0.5), speed: 36 };
    const v1 = nextVehicle(v0, 10_000, 10_000, () => 0.5); // 10 s at 36 km/h ≈ 100 m
    const dLat = (v1.lat - v0.lat) * 111_000;
    const dLon = (v1.lon - v0.lon) * 111_000 * Math.cos((v0.lat * Math.PI) / 180);
    expect(Math.hypot(dLat, dLon)).to.be.within(90, 110);
  });
});
