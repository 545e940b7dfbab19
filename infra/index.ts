/**
 * Pulumi entry point (`main` in Pulumi.yaml): this repository's own program is the stack's
 * config handed to the component (gateway.ts). The config is validated before anything is
 * registered; the tests run the component per stack under mocks.
 */
import * as pulumi from '@pulumi/pulumi';
import { projectValues, type StackName, type StackSettings } from './config';
import { RealtimeGateway } from './gateway';

// The config as Pulumi hands it over (scalars as strings, sections as JSON): parseStackConfig
// reads that form as well as the typed one, with the same messages.
const settings = projectValues(pulumi.runtime.allConfig()) as unknown as StackSettings;
const gateway = new RealtimeGateway('realtime-gateway', { ...settings, stack: pulumi.getStack() as StackName }, { aliasRootNames: true });

export const websocketUrl = gateway.websocketUrl;
export const managementEndpoint = gateway.managementEndpoint;
export const httpApiUrl = gateway.httpApiUrl;
export const tableNames = gateway.tableNames;
export const commandQueueUrl = gateway.commandQueueUrl;
export const inboundQueueUrl = gateway.inboundQueueUrl;
export const dashboardName = gateway.dashboardName;
export const alarmTopicArn = gateway.alarmTopicArn;
export const agentAutoScalingGroup = gateway.agentAutoScalingGroup;
export const httpPublishInvokePolicyArn = gateway.httpPublishInvokePolicyArn;
export const httpControlInvokePolicyArn = gateway.httpControlInvokePolicyArn;
