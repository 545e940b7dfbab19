import { topicAllowed, topicMatches, topicProblem } from '../topics';
import { patternsClaim, userIdProblem } from '../subscriber/auth';
import { AuthError, SubscriberError } from '../subscriber/errors';

/**
 * `GET /presence?userId=alice` or `GET /presence?topic=room:1` (HTTP API, payload 2.0): exactly
 * one of the two. Rights as for `POST /publish`: IAM-signed (dev) or no authoriser (local) callers
 * are trusted; with a JWT authoriser (prod) a topic needs the publish claim to allow it, a user
 * the send-to-user claim — whoever may message a user may see whether it is online.
 */

export type PresenceQuery = { readonly kind: 'topic'; readonly topic: string } | { readonly kind: 'user'; readonly userId: string };

export function parsePresenceQuery(query: Readonly<Record<string, string | undefined>> | null | undefined): PresenceQuery {
  const q = query ?? {};
  const given = (['topic', 'userId'] as const).filter((k) => q[k] !== undefined);
  if (given.length !== 1) throw new SubscriberError('invalid_target', 'give exactly one of the query parameters "topic" or "userId"');
  if (q.topic !== undefined) {
    const p = topicProblem(q.topic);
    if (p) throw new SubscriberError('invalid_topic', p);
    return { kind: 'topic', topic: q.topic };
  }
  const p = userIdProblem(q.userId);
  if (p) throw new SubscriberError('invalid_target', `"userId" ${p}`);
  return { kind: 'user', userId: q.userId! };
}

export function authorizePresence(req: PresenceQuery, claims: Record<string, unknown> | undefined, publishClaim: string, sendToUserClaim: string): void {
  if (!claims) return;
  if (req.kind === 'topic') {
    if (!topicAllowed(patternsClaim(claims[publishClaim]), req.topic)) {
      throw new AuthError('forbidden', `the token's "${publishClaim}" claim does not allow topic "${req.topic}"`);
    }
    return;
  }
  if (!patternsClaim(claims[sendToUserClaim]).some((p) => topicMatches(p, req.userId))) {
    throw new AuthError('forbidden', `the token's "${sendToUserClaim}" claim does not allow user "${req.userId}"`);
  }
}
