import { InputError } from '../errors';
import { patternsClaim } from '../subscriber/auth';
import { authorize } from '../subscriber/publish';

/**
 * Who may drive the upstream control API, and on what.
 *
 * In AWS the control routes sit behind the HTTP API's authoriser. A JWT authoriser accepts any
 * token of the configured issuer/audience — the same tokens subscribers hold — so a valid token is
 * not enough:
 *
 * - the token must carry the scope `upstream:admin` (in `scope`, space-separated as in RFC 8693
 *   §4.2, or `scp`, the array form some identity providers use). A fixed name rather than a
 *   setting: the HTTP API can enforce the same scope itself (route `authorizationScopes`), and
 *   one documented name is what operators grant;
 * - the socket's topic (the `topic` header, or the default `platform:{platformID}:{internalID}`)
 *   must pass the same publish authorisation as POST /publish: an upstream writes to its topic,
 *   so opening one is publishing;
 * - the caller's principal (`sub`, or the IAM caller ARN when the route uses IAM authorisation) is
 *   recorded on the row as `createdBy`, and only that principal may re-POST or DELETE the socket.
 *   An assumed-role session counts as its role (see `iamPrincipal`).
 *
 * Without an authoriser (the local stack) the caller is trusted, as POST /publish does.
 */

export const CONTROL_SCOPE = 'upstream:admin';

/** The parts of payload 2.0's requestContext.authorizer the control API reads. */
export interface ControlAuthorizer {
  readonly jwt?: { readonly claims?: Record<string, unknown> };
  readonly iam?: { readonly userArn?: string | null };
}

export interface ControlCaller {
  /** undefined: no authoriser (local stack), trusted; no ownership is recorded or enforced. */
  readonly principal?: string;
  /** JWT claims when the route has a JWT authoriser; the topic is authorised against them. */
  readonly claims?: Record<string, unknown>;
}

export class ControlAuthError extends InputError {
  constructor(code: 'insufficient_scope' | 'not_owner' | 'forbidden', message: string) {
    super(code, message, 403);
    this.name = 'ControlAuthError';
  }
}

/**
 * OAuth scopes: a space-delimited string (RFC 6749 §3.3), unlike topic pattern claims (one pattern
 * per string); an array, or API Gateway's flattened `"[a b]"` form, as patternsClaim reads them.
 */
function scopeList(v: unknown): string[] {
  if (typeof v === 'string' && !v.trim().startsWith('[')) return v.split(/\s+/).filter((x) => x.length > 0);
  return patternsClaim(v);
}

/**
 * The caller of one control request. Throws 403 `insufficient_scope` when JWT claims lack the
 * control scope, 403 `forbidden` when they name no subject.
 */
export function controlCaller(authorizer: ControlAuthorizer | undefined): ControlCaller {
  const claims = authorizer?.jwt?.claims;
  if (claims) {
    const scopes = [...scopeList(claims.scope), ...scopeList(claims.scp)];
    if (!scopes.includes(CONTROL_SCOPE)) {
      throw new ControlAuthError('insufficient_scope', `the token lacks the "${CONTROL_SCOPE}" scope the upstream control API requires`);
    }
    const sub = typeof claims.sub === 'string' ? claims.sub.trim() : '';
    // Without a subject there is nobody to record as the socket's creator.
    if (!sub) throw new ControlAuthError('forbidden', 'the token has no "sub" claim');
    return { principal: `jwt:${sub}`, claims };
  }
  const arn = authorizer?.iam?.userArn;
  if (typeof arn === 'string' && arn) return { principal: `iam:${iamPrincipal(arn)}` };
  return {};
}

/**
 * `arn:<partition>:sts::<account>:assumed-role/<role>/<session>` → `arn:<partition>:iam::<account>:role/<role>`.
 *
 * For a caller using assumed-role credentials, API Gateway's IAM authoriser passes the STS
 * session ARN as `userArn`. The session name is the caller's choice and often changes per run
 * (botocore's default is `botocore-session-<epoch>`; CI jobs name sessions after the run), so
 * keying ownership on it would make the same role a new principal each time, locked out of its
 * own sockets (403 not_owner). The role is the identity that was granted access, so it is the
 * principal; every session of it may manage the role's sockets.
 *
 * The session ARN does not carry the role's path, so the result has none (`role/ops`, even for a
 * role created under `/team/`). That is unambiguous: role names are unique within an account
 * whatever their path (IAM User Guide, "IAM identifiers"). Other ARNs (IAM users, federated
 * users, roles given directly) are kept as they are.
 */
export function iamPrincipal(arn: string): string {
  const m = /^arn:([a-z0-9-]+):sts::(\d{12}):assumed-role\/([^/]+)\/[^/]+$/.exec(arn);
  return m ? `arn:${m[1]}:iam::${m[2]}:role/${m[3]}` : arn;
}

/** The topic must be one the caller could publish to (POST /publish's rule); 403 `forbidden`. */
export function authorizeTopic(caller: ControlCaller, topic: string, publishClaim: string): void {
  authorize({ kind: 'topic', topic, data: null }, caller.claims, publishClaim);
}

/** 403 `not_owner` when the socket was created by another principal. */
export function assertOwner(caller: ControlCaller, socketId: string, createdBy: string | undefined): void {
  if (caller.principal === undefined || createdBy === undefined || createdBy === caller.principal) return;
  throw notOwnerError(socketId);
}

export function notOwnerError(socketId: string): ControlAuthError {
  return new ControlAuthError('not_owner', `upstream socket ${socketId} was created by another principal; only its creator may change or close it`);
}
