/**
 * Pulumi entry point (`main` in Pulumi.yaml). Reads and validates the stack's configuration
 * before anything is registered, then builds the platform. All logic lives in platform.ts and
 * the components, so tests can run it per stack under mocks.
 */
import * as pulumi from '@pulumi/pulumi';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createBundler, stackBuildDir } from './bundle';
import { parseStackConfig, projectValues } from './config';
import { createPlatform } from './platform';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const config = parseStackConfig(pulumi.getStack(), projectValues(pulumi.runtime.allConfig()));
const platform = createPlatform(config, { bundler: createBundler(root, stackBuildDir(root, config.stack)) });

export const websocketUrl = platform.websocketUrl;
export const managementEndpoint = platform.managementEndpoint;
export const httpApiUrl = platform.httpApiUrl;
export const tableNames = platform.tableNames;
export const commandQueueUrl = platform.commandQueueUrl;
export const inboundQueueUrl = platform.inboundQueueUrl;
export const dashboardName = platform.dashboardName;
export const alarmTopicArn = platform.alarmTopicArn;
export const agentAutoScalingGroup = platform.agentAutoScalingGroup;
export const httpPublishInvokePolicyArn = platform.httpPublishInvokePolicyArn;
export const httpControlInvokePolicyArn = platform.httpControlInvokePolicyArn;
