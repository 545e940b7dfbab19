import { runSimulation } from '@cloud-copilot/iam-simulate';
import type { PolicyDocument } from '../../infra/iam';
import { idClass, policyIgnoresId } from './id-independence';
import type { AuthzCheck } from './requests';

/**
 * The local stack's principals and their identity policies, and the decision for one call.
 * Each principal is an assumed-role session (what a Lambda function or an EC2 instance profile
 * signs as on AWS), known by the access key id its clients sign with. Decisions come from
 * `@cloud-copilot/iam-simulate` (AWS's evaluation logic: explicit deny, then any matching allow)
 * over the very documents `infra/iam.ts` builds for the Pulumi program.
 */

export interface LocalPrincipal {
  /** The access key id this principal's clients sign with (`AKIDLOCAL…`). */
  readonly accessKeyId: string;
  readonly roleName: string;
  /** The role session name (a Lambda function's name, an instance id). */
  readonly sessionName: string;
  readonly policy: PolicyDocument | AdminPolicy;
}

/** Test seeding and inspection: every action. Never given to handler code. */
export interface AdminPolicy {
  readonly Version: '2012-10-17';
  readonly Statement: [{ readonly Effect: 'Allow'; readonly Action: '*'; readonly Resource: '*' }];
}
export const ADMIN_POLICY: AdminPolicy = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] };

export interface Denial {
  readonly action: string;
  readonly resource: string;
  /** AWS's wording: "User: arn:…:assumed-role/ROLE/SESSION is not authorized to perform: …". */
  readonly message: string;
}

export interface DecisionRecord {
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  readonly allowed: boolean;
}

const CACHE_LIMIT = 20_000;

export class LocalIamAuthorizer {
  private readonly byKey = new Map<string, LocalPrincipal>();
  /**
   * principal|action|resource → allowed, or one entry per id prefix for ids the policy cannot
   * tell apart (id-independence.ts); other ids make resources many, so it is bounded.
   */
  private readonly cache = new Map<string, Promise<boolean>>();
  /** principal|prefix|id class → whether the principal's policy can tell those ids apart. */
  private readonly idBlind = new Map<string, boolean>();
  private evaluated = 0;

  constructor(
    readonly account: string,
    private readonly onDecision?: (d: DecisionRecord) => void,
  ) {}

  register(p: LocalPrincipal): void {
    const existing = this.byKey.get(p.accessKeyId);
    if (existing && existing.roleName !== p.roleName) throw new Error(`access key ${p.accessKeyId} is already ${existing.roleName}`);
    this.byKey.set(p.accessKeyId, p);
    this.cache.clear();
    this.idBlind.clear();
  }

  /** Policy evaluations made so far (decisions not answered from the cache): each costs milliseconds of CPU. */
  get evaluations(): number {
    return this.evaluated;
  }

  principal(accessKeyId: string | undefined): LocalPrincipal | undefined {
    return accessKeyId ? this.byKey.get(accessKeyId) : undefined;
  }

  principalArn(p: LocalPrincipal): string {
    return `arn:aws:sts::${this.account}:assumed-role/${p.roleName}/${p.sessionName}`;
  }

  /** The first check the caller may not make, or undefined when all are allowed. Unknown keys are denied. */
  async authorize(accessKeyId: string | undefined, checks: readonly AuthzCheck[]): Promise<Denial | undefined> {
    const p = this.principal(accessKeyId);
    for (const c of checks) {
      const allowed = p ? await this.decide(p, c) : false;
      this.onDecision?.({ principal: p?.roleName ?? `unknown:${accessKeyId ?? '-'}`, action: c.action, resource: c.resource, allowed });
      if (!allowed) {
        const who = p
          ? `User: ${this.principalArn(p)}`
          : `The security token included in the request is invalid (access key ${JSON.stringify(accessKeyId ?? null)} is no local principal). User: anonymous`;
        return {
          action: c.action,
          resource: c.resource,
          message: `${who} is not authorized to perform: ${c.action} on resource: ${c.resource} because no identity-based policy allows the ${c.action} action`,
        };
      }
    }
    return undefined;
  }

  private decide(p: LocalPrincipal, c: AuthzCheck): Promise<boolean> {
    const key = this.cacheKey(p, c);
    let d = this.cache.get(key);
    if (!d) {
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.evaluated++;
      d = evaluate(this.principalArn(p), this.account, p.policy, c);
      this.cache.set(key, d);
      // A failed evaluation is not a decision: the next call evaluates again.
      d.catch(() => this.cache.delete(key));
    }
    return d;
  }

  /**
   * The exact resource, or, for a generated id the principal's policy cannot tell apart from
   * the others of its class, the id's prefix and class: evaluated once, with the first such id.
   */
  private cacheKey(p: LocalPrincipal, c: AuthzCheck): string {
    const exact = `${p.accessKeyId}|${c.action}|${c.resource}`;
    if (c.idPrefix === undefined || !c.resource.startsWith(c.idPrefix)) return exact;
    const ids = idClass(c.resource.slice(c.idPrefix.length));
    if (!ids) return exact;
    const blindKey = `${p.accessKeyId}|${c.idPrefix}|${ids}`;
    let blind = this.idBlind.get(blindKey);
    if (blind === undefined) {
      if (this.idBlind.size >= CACHE_LIMIT) this.idBlind.clear();
      blind = policyIgnoresId(p.policy, c.idPrefix, ids);
      this.idBlind.set(blindKey, blind);
    }
    // NUL-led: no exact key (a registered access key id first) can collide with it.
    return blind ? `\0${p.accessKeyId}|${c.action}|${c.idPrefix}|${ids}` : exact;
  }
}

async function evaluate(principal: string, account: string, policy: LocalPrincipal['policy'], c: AuthzCheck): Promise<boolean> {
  const res = await runSimulation(
    {
      identityPolicies: [{ name: 'inline', policy: policy as unknown as Record<string, unknown> }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      request: { action: c.action, principal, resource: { accountId: account, resource: c.resource }, contextVariables: {} },
    } as Parameters<typeof runSimulation>[0],
    {},
  );
  if (res.resultType === 'error') {
    // A request the evaluator cannot place (an unknown action, a resource of the wrong type) is
    // a request AWS would refuse as well: deny, and say why in the decision log.
    return false;
  }
  return res.overallResult === 'Allowed';
}
