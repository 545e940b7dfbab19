import { ConfigError } from '../errors';
import { ACTIONS, APP_ACTION_PATTERN } from '../protocol/frames';
import { topicProblem } from '../topics';

/**
 * Rules the handlers' environment (lib/config) and the Pulumi stack config (infra/config) both
 * enforce, defined once so a preview refuses exactly what a Lambda would refuse at start-up.
 * Callers pass their own setting names: the same rule reads `JWT_HS256_SECRET` in one place
 * and `realtime-gateway:jwtHs256Secret` in the other.
 */

/** An item key becomes a query parameter and a topic prefix (`vehicleId:3`). */
export const ITEM_KEY_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;

/** RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (256 bits). */
export const HS256_MIN_BYTES = 32;

export function checkItemKeys(keys: readonly string[], errorKey: string, expected: string): void {
  for (const k of keys) {
    if (!ITEM_KEY_PATTERN.test(k)) throw new ConfigError(errorKey, `contains "${k}"; expected ${expected}`);
  }
}

/** Application action names: routed on `$default`, so never one of the protocol's own actions. */
export function checkAppActions(actions: readonly string[], errorKey: string, expected: string): void {
  for (const a of actions) {
    if (!APP_ACTION_PATTERN.test(a) || (ACTIONS as readonly string[]).includes(a)) {
      throw new ConfigError(errorKey, `contains "${a}"; expected ${expected} (a letter, then up to 63 of A-Z a-z 0-9 _ . : -), none of ${ACTIONS.join(', ')}`);
    }
  }
}

/** Topic patterns (`room:1`, `room:*`, `*`): the same rule as a topic name, a `*` only at the end. */
export function checkTopicPatterns(patterns: readonly string[], errorKey: string, expected: string): void {
  for (const p of patterns) {
    const problem = topicProblem(p);
    if (problem || p.slice(0, -1).includes('*')) throw new ConfigError(errorKey, `contains "${p}"; expected ${expected}${problem ? ` (${problem})` : ''}`);
  }
}

export interface JwtKeySources {
  readonly hs256Secret?: string;
  readonly rs256PublicKey?: string;
  readonly jwksUrl?: string;
}

export interface JwtKeySourceNames {
  /** Names as they appear in messages. */
  readonly hs256Secret: string;
  readonly rs256PublicKey: string;
  readonly jwksUrl: string;
  /** The error key of a message about the HS256 secret (the setting to change). */
  readonly hs256SecretKey: string;
  /** The message when no key source is set. */
  readonly missing: string;
}

/** Subscriber JWTs need exactly one verification key source; an HS256 one must be long enough. */
export function checkJwtKeySources(src: JwtKeySources, names: JwtKeySourceNames): void {
  if (!src.hs256Secret && !src.rs256PublicKey && !src.jwksUrl) throw new ConfigError(names.hs256SecretKey, names.missing);
  // One verification key source: with a shared secret and a public key both set, which one
  // verifies is an accident of code order, and an operator rotating to RS256 would keep
  // accepting tokens anyone holding the old secret can mint.
  if (src.hs256Secret && (src.rs256PublicKey || src.jwksUrl)) {
    const other = src.rs256PublicKey ? names.rs256PublicKey : names.jwksUrl;
    throw new ConfigError(
      names.hs256SecretKey,
      `is set together with ${other}; set exactly one of ${names.hs256Secret} (HS256) or ${names.rs256PublicKey} / ${names.jwksUrl} (RS256)`,
    );
  }
  if (src.hs256Secret && Buffer.byteLength(src.hs256Secret) < HS256_MIN_BYTES) {
    throw new ConfigError(names.hs256SecretKey, `is shorter than ${HS256_MIN_BYTES} bytes; HS256 needs a key of at least ${HS256_MIN_BYTES * 8} bits`);
  }
}
