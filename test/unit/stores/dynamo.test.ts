import { expect } from 'chai';
import { isConditionFailed, isLive } from '../../../lib/stores/dynamo';

describe('DynamoDB idioms', () => {
  const now = Date.UTC(2026, 0, 1, 12);
  const nowSec = now / 1000;

  it('a row counts until its expiresAt (epoch seconds) has passed, whether or not TTL has deleted it', () => {
    expect(isLive({ expiresAt: nowSec + 1 }, now)).to.equal(true);
    expect(isLive({ expiresAt: nowSec }, now)).to.equal(false);
    expect(isLive({ expiresAt: nowSec - 3600 }, now)).to.equal(false);
  });

  it('a row without a usable expiresAt is not live (TTL would never delete it either)', () => {
    expect(isLive({}, now)).to.equal(false);
    expect(isLive({ expiresAt: 'soon' }, now)).to.equal(false);
    expect(isLive({ expiresAt: null }, now)).to.equal(false);
  });

  it('tells a refused condition from any other error', () => {
    expect(isConditionFailed(Object.assign(new Error('x'), { name: 'ConditionalCheckFailedException' }))).to.equal(true);
    expect(isConditionFailed(Object.assign(new Error('x'), { name: 'ProvisionedThroughputExceededException' }))).to.equal(false);
    expect(isConditionFailed(undefined)).to.equal(false);
  });
});
