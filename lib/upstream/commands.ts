import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { SOCKET_ID_PATTERN } from './socket-id';

/**
 * Messages on the command queue. They are hints: the agent always re-reads the upstreams
 * table and acts on `desired`, so a duplicated, reordered or lost command cannot leave a socket
 * in the wrong state. A command names the socket and nothing else — never a URL or credential.
 */

export type CommandType = 'open' | 'close';

export interface Command {
  readonly v: 1;
  readonly type: CommandType;
  readonly socketId: string;
  /** Epoch ms at which the control API sent it; for logs and latency figures only. */
  readonly sentAt: number;
}

export class BadCommandError extends Error {
  readonly code = 'bad_command';
  constructor(message: string) {
    super(message);
    this.name = 'BadCommandError';
  }
}

export function encodeCommand(type: CommandType, socketId: string, sentAt: number): string {
  const c: Command = { v: 1, type, socketId, sentAt };
  return JSON.stringify(c);
}

export function parseCommand(body: string | undefined): Command {
  let v: unknown;
  try {
    v = JSON.parse(body ?? '');
  } catch {
    throw new BadCommandError('command is not JSON');
  }
  const c = v as Partial<Command>;
  if (c?.v !== 1) throw new BadCommandError(`unknown command version ${String(c?.v)}`);
  if (c.type !== 'open' && c.type !== 'close') throw new BadCommandError(`unknown command type ${String(c.type)}`);
  if (typeof c.socketId !== 'string' || !SOCKET_ID_PATTERN.test(c.socketId)) throw new BadCommandError('command has no valid socketId');
  return { v: 1, type: c.type, socketId: c.socketId, sentAt: Number(c.sentAt ?? 0) };
}

export interface CommandSender {
  send(type: CommandType, socketId: string): Promise<void>;
}

export function sqsCommandSender(sqs: SQSClient, queueUrl: string, clock: () => number = Date.now): CommandSender {
  return {
    async send(type, socketId) {
      await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: encodeCommand(type, socketId, clock()) }));
    },
  };
}
