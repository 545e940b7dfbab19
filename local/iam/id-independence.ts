/**
 * Whether a principal's policy can tell apart the resources `prefix + id` for the ids a service
 * generates (API Gateway's connection ids: `{api}/{stage}/{VERB}/@connections/{id}`). When it
 * cannot, one decision holds for every such id, and the authorizer evaluates it once per prefix
 * instead of once per connection: an evaluation costs ~2 ms of CPU on the stack's event loop, and
 * a fan-out's first record to 100 new subscribers paid it 100 times before its first delivery.
 *
 * Only resource patterns can tell ids apart: the authorizer passes no context variables, so a
 * condition sees the same request context for every id. Ids are base64 (`L0SM9cOFvHcCIhw=`): with
 * or without `/`, never `:` (which would move ARN segments) nor a wildcard. A pattern is id-blind
 * (its match against `prefix + id` is the same for every such id) when
 * - it is `*`, or its only wildcard is one trailing `*` after text that is a prefix of `prefix`:
 *   the id lies inside that `*` (a shorter ARN is padded with `*` segments, which match any id);
 * - it ends in `/*` and the id has no `/`: what comes before that `/` can only match up to a `/`
 *   of the prefix (`arn:aws:execute-api:*:*:api/local/*`);
 * - its text up to its first wildcard or policy variable already differs from `prefix`, ignoring
 *   case (the most lenient ARN comparison): it names another resource.
 * Anything else (a literal naming an id, `…/@connections/A*`, a policy variable after a matching
 * prefix) is decided per id, as every resource is.
 */

/** What decides which patterns are id-blind: `/` in the id, or not. */
export type IdClass = 'plain' | 'slashed';

/** The id's class, or undefined for an id that is decided on its own (not base64). */
export function idClass(id: string): IdClass | undefined {
  if (/^[A-Za-z0-9+=_-]{1,128}$/.test(id)) return 'plain';
  if (/^[A-Za-z0-9+=_/-]{1,128}$/.test(id)) return 'slashed';
  return undefined;
}

/** The pattern's match against `prefix + id` is the same for every id of the class. */
export function patternIgnoresId(pattern: string, prefix: string, ids: IdClass): boolean {
  if (ids === 'plain' && pattern.endsWith('/*') && !pattern.includes('$')) return true;
  const special = pattern.search(/[*?$]/);
  const literal = (special < 0 ? pattern : pattern.slice(0, special)).toLowerCase();
  const p = prefix.toLowerCase();
  if (special === pattern.length - 1 && pattern.endsWith('*') && p.startsWith(literal)) return true;
  // Neither text is a prefix of the other: they differ before the id starts.
  return !literal.startsWith(p) && !p.startsWith(literal);
}

interface StatementLike {
  readonly Resource?: unknown;
  readonly NotResource?: unknown;
}

/** No Resource or NotResource pattern of the policy can tell the ids of the class after `prefix` apart. */
export function policyIgnoresId(policy: { readonly Statement: unknown }, prefix: string, ids: IdClass): boolean {
  const statements = (Array.isArray(policy.Statement) ? policy.Statement : [policy.Statement]) as (StatementLike | undefined)[];
  return statements.every((s) => {
    const patterns = [s?.Resource, s?.NotResource].filter((v) => v !== undefined).flat();
    // A statement without resources is malformed: the evaluator judges it, per id.
    return patterns.length > 0 && patterns.every((r) => typeof r === 'string' && patternIgnoresId(r, prefix, ids));
  });
}
