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

/** The default topic of an upstream's messages; POST may name another. */
export function defaultTopic(p: Pick<ConnectionParams, 'platformID' | 'internalID'>): string {
  return `platform:${p.platformID}:${p.internalID}`;
}
