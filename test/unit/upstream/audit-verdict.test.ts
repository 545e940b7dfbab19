import { expect } from 'chai';
import { auditVerdict } from '../../../ec2-agent/audit';
import type { UpstreamRow } from '../../../lib/upstream/row';

/** What the ownership audit does with a held socket, from its row read consistently. */
describe('agent: ownership audit verdict', () => {
  const fence = { owner: 'agent-a', epoch: 1_764_000_000_000_123 };
  const row = (over: Partial<UpstreamRow>) => ({ socketId: 's', desired: 'open', status: 'open', owner: fence.owner, leaseExpiresAt: fence.epoch, ...over }) as UpstreamRow;
  const cases: [string, UpstreamRow | undefined, string][] = [
    ['ours and desired open (the index lagged): kept', row({}), 'keep'],
    ['ours, desired closed (a DELETE whose command was lost): closed cleanly', row({ desired: 'closed' }), 'unwanted'],
    ['row gone: nobody can claim it, closed cleanly', undefined, 'unwanted'],
    ['another owner (taken over): cut', row({ owner: 'agent-b', leaseExpiresAt: fence.epoch + 1 }), 'refused'],
    ['our name under another epoch (an earlier life of this agent): cut', row({ leaseExpiresAt: fence.epoch - 1 }), 'refused'],
    ['taken over and then deleted: cut, not released by us', row({ owner: 'agent-b', desired: 'closed' }), 'refused'],
    ['released or failed (no owner): cut', row({ owner: undefined, leaseExpiresAt: 0 }), 'refused'],
  ];
  for (const [what, r, verdict] of cases) {
    it(what, () => expect(auditVerdict(r, fence)).to.equal(verdict));
  }
});
