/**
 * The platform as one Pulumi component, the awsx way: `new RealtimeGateway(name, args, opts)`.
 * Exported as `realtime-gateway/infra` (package.json `exports`), so a program of a user's own can
 * put the platform next to its resources; `infra/index.ts` is one such program.
 */
import * as pulumi from '@pulumi/pulumi';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBundler, stackBuildDir, type Bundler } from './bundle';
import { parseStackConfig, type StackConfig, type StackName, type StackSettings } from './config';
import { createPlatform, type PlatformOutputs } from './platform';

export type { FleetVpc, HttpAuth, StackName, StackSettings, SubscriberAuth } from './config';

export const REALTIME_GATEWAY_TYPE = 'realtime-gateway:index:RealtimeGateway';

/** The package root: handler and agent sources are found here, whatever the caller's cwd. */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The settings of the `realtime-gateway:` namespace of `Pulumi.<stack>.yaml`, as one typed
 * object, plus `stack`: which rule set applies (`prod` refuses open auth and unprotected tables,
 * and sets the prod defaults). Values that may come from other resources are `Input`s
 * (`fleet.vpcId`, `fleet.subnetIds`, `alarms.topicArn`).
 */
export interface RealtimeGatewayArgs extends StackSettings {
  readonly stack: StackName;
}

export interface RealtimeGatewayOptions extends pulumi.ComponentResourceOptions {
  /**
   * Set by this repository's own program only: its resources existed at the stack's root before
   * the component did, and are aliased so an existing stack keeps them.
   */
  readonly aliasRootNames?: boolean;
}

/** One bundler per output directory: two gateways in one program build the bundles once. */
const bundlers = new Map<string, Bundler>();

function bundlerFor(stack: StackName): Bundler {
  const dir = stackBuildDir(PACKAGE_ROOT, stack);
  let b = bundlers.get(dir);
  if (!b) bundlers.set(dir, (b = createBundler(PACKAGE_ROOT, dir)));
  return b;
}

// The outputs are the component's properties (declaration merging: one list, PlatformOutputs).
export interface RealtimeGateway extends PlatformOutputs {}

export class RealtimeGateway extends pulumi.ComponentResource {
  /** The validated settings the platform was built from. */
  readonly config: StackConfig;

  constructor(name: string, args: RealtimeGatewayArgs, opts: RealtimeGatewayOptions = {}) {
    // Validated before anything is registered, this component included: a bad setting stops
    // the preview with the message the stack config gives.
    const { stack, ...settings } = args;
    const config = parseStackConfig(stack, settings);
    const { aliasRootNames, ...resourceOpts } = opts;
    super(REALTIME_GATEWAY_TYPE, name, {}, resourceOpts);
    this.config = config;
    const outputs = createPlatform(config, { bundler: bundlerFor(config.stack), owner: { resource: this, name, aliasRootNames } });
    Object.assign(this, outputs);
    this.registerOutputs({ ...outputs });
  }
}
