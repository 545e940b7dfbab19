import type { IncomingMessage } from 'node:http';
import type { LocalIamAuthorizer } from './authorizer';
import { accessKeyOf, type LocalArns } from './requests';

/**
 * The `@connections` check: each call is `execute-api:ManageConnections` on
 * `{api}/{stage}/{METHOD}/@connections/{id}` for the principal whose access key signed it.
 * A refusal is API Gateway's: 403 with `ForbiddenException` naming the action and resource.
 */
export interface ManagementDenial {
  readonly status: number;
  readonly errorType: string;
  readonly message: string;
}

export function managementAuthorize(
  authorizer: LocalIamAuthorizer,
  api: { readonly arns: LocalArns; readonly apiId: string; readonly stage: string },
  mode: 'enforce' | 'audit' = 'enforce',
): (req: IncomingMessage) => Promise<ManagementDenial | undefined> {
  const { partition, region, account } = api.arns;
  const prefix = `/${api.stage}/@connections/`;
  return async (req) => {
    const path = (req.url ?? '/').split('?')[0]!;
    let id = path.startsWith(prefix) ? path.slice(prefix.length) : '';
    try {
      id = decodeURIComponent(id);
    } catch {
      // The emulator answers the bad encoding itself; authorise the raw path.
    }
    const idPrefix = `arn:${partition}:execute-api:${region}:${account}:${api.apiId}/${api.stage}/${req.method ?? 'GET'}/@connections/`;
    const auth = Array.isArray(req.headers.authorization) ? req.headers.authorization[0] : req.headers.authorization;
    const denial = await authorizer.authorize(accessKeyOf(auth), [{ action: 'execute-api:ManageConnections', resource: idPrefix + id, idPrefix }]);
    if (!denial || mode === 'audit') return undefined;
    return { status: 403, errorType: 'ForbiddenException', message: denial.message };
  };
}
