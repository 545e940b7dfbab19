import { createHash } from 'node:crypto';

/**
 * The socket id of seed 000: sha1 over the three connection parameters, so the same
 * (internalID, interWorkingInterface, platformID) always names the same upstream socket and a
 * repeated POST is idempotent.
 *
 * The parameters are joined with a line feed before hashing. Plain concatenation (what a
 * quick port of the seed would do) is ambiguous — ("a","bc") and ("ab","c") would collide —
 * while LF cannot appear in an HTTP header value (RFC 9110 §5.5), so this encoding is
 * injective for every value the control API accepts.
 */
export interface ConnectionParams {
  readonly internalID: string;
  readonly interWorkingInterface: string;
  readonly platformID: string;
}

export function socketIdOf(p: ConnectionParams): string {
  return createHash('sha1').update(`${p.internalID}\n${p.interWorkingInterface}\n${p.platformID}`, 'utf8').digest('hex');
}

export const SOCKET_ID_PATTERN = /^[0-9a-f]{40}$/;

/**
 * Redundant homing (`redundancy: 2`): the second ownership slot of socket X is a row of its own,
 * key `X#2`, a copy of X's connection fields. Being a row, it is claimed, fenced, taken over and
 * found by the byDesiredLease index exactly like X (lib/upstream/leases.ts); the agent never holds
 * both X and X#2. Commands and the control API only ever name X.
 */
export function slotRowId(socketId: string): string {
  return `${socketId}#2`;
}

/** X for X and for X#2. */
export function baseSocketId(id: string): string {
  return id.endsWith('#2') ? id.slice(0, -2) : id;
}

/** The other slot's row id: X#2 for X, X for X#2. */
export function siblingSlotId(id: string): string {
  return id.endsWith('#2') ? id.slice(0, -2) : slotRowId(id);
}

/** The default topic of an upstream's messages; POST may name another. */
export function defaultTopic(p: Pick<ConnectionParams, 'platformID' | 'internalID'>): string {
  return `platform:${p.platformID}:${p.internalID}`;
}
