import { expect } from 'chai';
import { ago, upstreamHealth } from '../../../../local/dashboard/upstream-health';

describe('dashboard upstream health', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  const row = { status: 'open', isActive: true, countErr: 0, lastHealthyAt: '2026-01-01T11:59:48Z' };

  it('a socket with errors counted or given up on is unhealthy, with the reasons; an open one without errors is not', () => {
    expect(upstreamHealth(row, now)).to.deep.equal({ unhealthy: false, reasons: [], lastHealthy: '12 s ago' });
    expect(upstreamHealth({ ...row, status: 'reconnecting', isActive: false, countErr: 1 }, now)).to.deep.include({ unhealthy: true, reasons: ['1 consecutive error'] });
    expect(upstreamHealth({ ...row, status: 'failed', isActive: false, countErr: 5, lastHealthyAt: null }, now)).to.deep.equal({
      unhealthy: true,
      reasons: ['failed: the agent gave up on it', '5 consecutive errors'],
      lastHealthy: 'never',
    });
  });

  it('says how long ago it was last healthy, in units a person reads', () => {
    expect(ago(null, now)).to.equal('never');
    expect(ago('not a date', now)).to.equal('never');
    expect(ago('2026-01-01T11:58:31Z', now)).to.equal('89 s ago');
    expect(ago('2026-01-01T11:30:00Z', now)).to.equal('30 min ago');
    expect(ago('2026-01-01T07:00:00Z', now)).to.equal('5 h ago');
    expect(ago('2025-12-25T12:00:00Z', now)).to.equal('7 d ago');
  });
});
