import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { headerValue, parseConnectionParams, parseCredentials, parseTopic, LIMITS } from '../../../lib/upstream/headers';
import { defaultTopic, socketIdOf } from '../../../lib/upstream/socket-id';
import { InputError } from '../../../lib/errors';

const params = { internalID: 'veh-42', interWorkingInterface: 'wss://platform.example.com/ws', platformID: 'acme' };

function inputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(InputError);
    return err as InputError;
  }
  throw new Error('expected an InputError');
}

describe('upstream socket id', () => {
  it('is the sha1 of the three connection parameters (LF-joined), 40 hex chars', () => {
    const want = createHash('sha1').update('veh-42\nwss://platform.example.com/ws\nacme').digest('hex');
    expect(socketIdOf(params)).to.equal(want).and.to.match(/^[0-9a-f]{40}$/);
  });

  it('is stable for the same parameters and differs when any changes', () => {
    expect(socketIdOf({ ...params })).to.equal(socketIdOf(params));
    expect(socketIdOf({ ...params, internalID: 'veh-43' })).to.not.equal(socketIdOf(params));
    expect(socketIdOf({ ...params, platformID: 'acme2' })).to.not.equal(socketIdOf(params));
    expect(socketIdOf({ ...params, interWorkingInterface: 'wss://platform.example.com/ws2' })).to.not.equal(socketIdOf(params));
  });

  it('does not collide when characters move between parameters', () => {
    const a = socketIdOf({ internalID: 'ab', interWorkingInterface: 'c', platformID: 'd' });
    const b = socketIdOf({ internalID: 'a', interWorkingInterface: 'bc', platformID: 'd' });
    expect(a).to.not.equal(b);
  });

  it('default topic is platform:{platformID}:{internalID}', () => {
    expect(defaultTopic(params)).to.equal('platform:acme:veh-42');
  });
});

describe('control API headers', () => {
  it('matches header names case-insensitively', () => {
    const h = { internalid: 'veh-42', INTERWORKINGINTERFACE: 'wss://x.example/ws', PlatformId: 'acme' };
    expect(parseConnectionParams(h)).to.deep.equal({ internalID: 'veh-42', interWorkingInterface: 'wss://x.example/ws', platformID: 'acme' });
    expect(headerValue({ 'ASAPA_EMAIL': 'a@b.c' }, 'asapa_email')).to.equal('a@b.c');
  });

  it('names every missing connection header, 400 missing_header', () => {
    const e = inputError(() => parseConnectionParams({ internalid: 'x' }));
    expect(e.code).to.equal('missing_header');
    expect(e.status).to.equal(400);
    expect(e.message).to.include('interWorkingInterface').and.include('platformID').and.not.include('internalID');
  });

  it('treats a blank header as missing', () => {
    const e = inputError(() => parseConnectionParams({ ...params, platformID: '   ' }));
    expect(e.message).to.include('platformID');
  });

  it('requires both credentials and names the missing one', () => {
    const e = inputError(() => parseCredentials({ asapa_email: 'a@b.c' }));
    expect(e.code).to.equal('missing_header');
    expect(e.message).to.include('asapa_pass');
    expect(parseCredentials({ asapa_email: 'a@b.c', asapa_pass: 'p:w' })).to.deep.equal({ email: 'a@b.c', pass: 'p:w' });
  });

  it('refuses oversized values with 400 header_too_long naming the header', () => {
    const e = inputError(() => parseConnectionParams({ ...params, internalID: 'x'.repeat(LIMITS.internalID + 1) }));
    expect(e.code).to.equal('header_too_long');
    expect(e.message).to.include('internalID');
    const e2 = inputError(() => parseCredentials({ asapa_email: 'a@b.c', asapa_pass: 'p'.repeat(LIMITS.pass + 1) }));
    expect(e2.code).to.equal('header_too_long');
    // The message names the header, never echoes the value.
    expect(e2.message).to.include('asapa_pass').and.not.include('ppppp');
  });

  it('validates the optional topic header', () => {
    expect(parseTopic({})).to.equal(undefined);
    expect(parseTopic({ topic: 'vehicle:3' })).to.equal('vehicle:3');
    expect(inputError(() => parseTopic({ topic: 't'.repeat(300) })).code).to.equal('header_too_long');
  });
});
