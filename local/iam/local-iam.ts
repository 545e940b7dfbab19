import type { IncomingMessage } from 'node:http';
import type { Logger } from '../../lib/log';
import { LocalSecretStore } from '../../lib/upstream/secrets-local';
import { LocalIamAuthorizer, type DecisionRecord } from './authorizer';
import { startIamGateway, type RunningIamGateway } from './gateway';
import { managementAuthorize, type ManagementDenial } from './management';
import { ADMIN, LOCAL_ACCOUNT, localPrincipals, type LocalResources } from './principals';
import type { LocalArns } from './requests';

/**
 * IAM enforcement for the local stack (docs/local-iam.md): the gateway in front of DynamoDB
 * Local and SQS (and serving Secrets Manager), the `@connections` check, and the principals. Started before the tables exist
 * (bootstrap goes through it as `admin`); `bind` installs every principal's policy once the
 * resources, and so their ARNs, are known. Until then only `admin` may call anything.
 */

export type IamMode = 'enforce' | 'audit' | 'off';

export interface LocalIam {
  /** Where every principal's DynamoDB, DynamoDB Streams and SQS clients point. */
  readonly endpoint: string;
  readonly authorizer: LocalIamAuthorizer;
  /** Installs every principal's policy, and the sealed-file store the Secrets Manager calls use. */
  bind(resources: Omit<LocalResources, 'arns'>, secrets?: { readonly dir: string; readonly keyHex: string }): void;
  /** The management API hook (the WebSocket emulator's `authorizeManagement`). */
  authorizeManagement(req: IncomingMessage): Promise<ManagementDenial | undefined>;
  stop(): Promise<void>;
}

export async function startLocalIam(opts: {
  readonly region: string;
  readonly upstreams: Readonly<Record<'dynamodb' | 'sqs', string>>;
  readonly mode: Exclude<IamMode, 'off'>;
  readonly log: Logger;
  readonly onDecision?: (d: DecisionRecord) => void;
}): Promise<LocalIam> {
  const arns: LocalArns = { partition: 'aws', region: opts.region, account: LOCAL_ACCOUNT };
  const authorizer = new LocalIamAuthorizer(LOCAL_ACCOUNT, opts.onDecision);
  // Admin exists from the start: bootstrap creates the tables and queues through the gateway.
  authorizer.register(ADMIN);
  let secretStore: LocalSecretStore | undefined;
  const gateway: RunningIamGateway = await startIamGateway({
    upstreams: opts.upstreams,
    authorizer,
    arns,
    mode: opts.mode,
    secrets: () => secretStore,
    log: opts.log,
  });
  let management: ((req: IncomingMessage) => Promise<ManagementDenial | undefined>) | undefined;
  return {
    endpoint: gateway.endpoint,
    authorizer,
    bind(resources, secrets) {
      const r: LocalResources = { ...resources, arns };
      if (secrets) secretStore = new LocalSecretStore(secrets);
      for (const p of localPrincipals(r)) authorizer.register(p);
      management = managementAuthorize(authorizer, { arns, apiId: r.websocket.apiId, stage: r.websocket.stage }, opts.mode);
    },
    authorizeManagement(req) {
      if (!management) return Promise.resolve({ status: 403, errorType: 'ForbiddenException', message: 'local IAM: the stack is not ready yet' });
      return management(req);
    },
    stop: () => gateway.stop(),
  };
}
