import { createHash } from 'node:crypto';
import { InputError } from '../errors';
import type { Logger } from '../log';
import type { CommandSender } from './commands';
import { assertOwner, authorizeTopic, type ControlCaller } from './control-auth';
import { parseUpstreamUrl } from './endpoint';
import { parseConnectionParams, parseCredentials, parseDedupePath, parseRedundancy, socketTopic, type HeaderMap } from './headers';
import type { UpstreamRow } from './row';
import { secretNameFor, type SecretStore } from './secret-store';
import { slotRowId, SOCKET_ID_PATTERN, socketIdOf } from './socket-id';
import type { SsrfGuard } from './ssrf';
import type { UpstreamStore } from './store';

/**
 * The control API's core, free of HTTP: open, describe, close and list upstream sockets.
 * Order of a POST: validate → authorise (topic, owner) → SSRF and scheme check → secret → table
 * (desired=open, conditioned on the owner) → command. The table
 * is the truth, so if the command cannot be sent the socket still opens, via the agents'
 * reconcile loop, one reconcile interval later; the request is not failed for it.
 */

export interface ControlDeps {
  readonly store: UpstreamStore;
  readonly secrets: SecretStore;
  readonly commands: CommandSender;
  readonly guard: SsrfGuard;
  readonly secretPrefix: string;
  /** The JWT claim whose patterns list the topics a caller may publish to (as POST /publish). */
  readonly publishClaim: string;
  readonly clock: () => number;
  readonly log: Logger;
}

/** What GET returns; never credentials or the secret's name. */
export interface UpstreamView {
  socketId: string;
  internalID: string;
  interWorkingInterface: string;
  platformID: string;
  topic: string;
  createdBy: string | null;
  desired: string;
  status: string;
  isActive: boolean;
  countErr: number;
  lastHealthyAt: string | null;
  owner: string | null;
  leaseExpiresAt: string | null;
  connectedAt: string | null;
  createdAt: string;
  updatedAt: string;
  lastError: string | null;
  /** 2: two agents keep the upstream open; the fields above are then the first slot's. */
  redundancy: 1 | 2;
  dedupePath: string | null;
  counters: { messagesIn: number; messagesPersisted: number; messagesDropped: number; errors: number; reconnects: number };
  /**
   * GET of one redundant socket only: true while it is desired open and fewer than two of its
   * slots have an owner — after an agent died and only one agent is left, the other slot waits
   * for a second agent (an agent never holds both), so one more crash would lose messages.
   */
  degraded?: boolean;
  /** GET of one redundant socket only: each slot's owner and state. */
  slots?: SlotView[];
}

/** One ownership slot of a redundant socket (slot 2 is the row `<socketId>#2`). */
export interface SlotView {
  slot: 1 | 2;
  owner: string | null;
  status: string;
  isActive: boolean;
}

/** Epochs are `ms × 1000 + random` (lib/upstream/heartbeats.ts): never below this. */
const EPOCH_FLOOR = 1e15;

const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : null);

export function viewOf(row: UpstreamRow, now: number): UpstreamView {
  // An owned row's leaseExpiresAt is its owner's epoch (lib/upstream/leases.ts), above any clock
  // value; liveness is the owner's heartbeat, which a dead agent's rows keep naming until they
  // are taken over (leaseMs + reconcileMs at most). A number below `now` is a legacy lease time.
  const leaseLive = !!row.owner && (row.leaseExpiresAt ?? 0) > now;
  const legacyLease = !!row.owner && (row.leaseExpiresAt ?? 0) < EPOCH_FLOOR;
  return {
    socketId: row.socketId,
    internalID: row.internalID,
    interWorkingInterface: row.interWorkingInterface,
    platformID: row.platformID,
    topic: row.topic,
    createdBy: row.createdBy ?? null,
    desired: row.desired,
    status: row.status,
    isActive: row.isActive && leaseLive,
    countErr: row.countErr,
    lastHealthyAt: iso(row.lastHealthyAt),
    owner: leaseLive ? row.owner! : null,
    leaseExpiresAt: legacyLease ? iso(row.leaseExpiresAt) : null,
    connectedAt: iso(row.connectedAt),
    createdAt: iso(row.createdAt) ?? new Date(0).toISOString(),
    updatedAt: iso(row.updatedAt) ?? new Date(0).toISOString(),
    lastError: row.lastError ?? null,
    redundancy: row.redundancy,
    dedupePath: row.dedupePath ?? null,
    counters: {
      messagesIn: row.messagesIn,
      messagesPersisted: row.messagesPersisted,
      messagesDropped: row.messagesDropped,
      errors: row.errors,
      reconnects: row.reconnects,
    },
  };
}

/**
 * The secret of one socket for one creator. Keyed by the principal too, so a POST that is about
 * to be refused as `not_owner` (two principals racing to create the same socket) never
 * overwrites the credentials the owner stored: it writes its own secret, which no row names.
 */
export function secretRefFor(prefix: string, socketId: string, principal: string | undefined): string {
  if (principal === undefined) return secretNameFor(prefix, socketId);
  return secretNameFor(prefix, `${socketId}-${createHash('sha256').update(principal, 'utf8').digest('hex').slice(0, 16)}`);
}

export async function openUpstream(
  d: ControlDeps,
  headers: HeaderMap,
  caller: ControlCaller = {},
): Promise<{ socketId: string; status: string; topic: string }> {
  const params = parseConnectionParams(headers);
  const creds = parseCredentials(headers);
  const topic = socketTopic(headers, params);
  const redundancy = parseRedundancy(headers);
  const dedupePath = parseDedupePath(headers, redundancy);
  const url = parseUpstreamUrl(params.interWorkingInterface);
  // The socket writes to its topic: opening it needs the same grant as publishing to it.
  authorizeTopic(caller, topic, d.publishClaim);
  const socketId = socketIdOf(params);
  if (caller.principal !== undefined) {
    // Refuse before anything is written; the conditional table write below settles races.
    assertOwner(caller, socketId, (await d.store.get(socketId))?.createdBy);
  }
  await d.guard.check(url);
  const secretRef = secretRefFor(d.secretPrefix, socketId, caller.principal);
  await d.secrets.put(secretRef, creds);
  const fields = { ...params, topic, secretRef, redundancy, dedupePath };
  const row = await d.store.requestOpen(socketId, fields, d.clock(), caller.principal);
  // The second slot is a row of its own, opened and closed with the first (lib/upstream/socket-id.ts).
  if (redundancy === 2) await d.store.requestOpen(slotRowId(socketId), fields, d.clock(), caller.principal);
  else await closeSlot(d, socketId, caller);
  try {
    await d.commands.send('open', socketId);
  } catch (err) {
    d.log.warn('open command not sent; reconcile will pick the socket up', { socketId, err });
  }
  d.log.info('upstream open requested', { socketId, platformID: params.platformID, internalID: params.internalID, topic, status: row.status, principal: caller.principal });
  return { socketId, status: row.status, topic };
}

/** `?socketId=` when given, else the three connection headers. */
export function socketIdFrom(headers: HeaderMap, query: Readonly<Record<string, string | undefined>> | undefined): string {
  const q = query?.socketId;
  if (q !== undefined) {
    if (!SOCKET_ID_PATTERN.test(q)) throw new InputError('invalid_socket_id', 'query parameter socketId must be 40 lower-case hex characters');
    return q;
  }
  return socketIdOf(parseConnectionParams(headers));
}

export async function describeUpstream(d: ControlDeps, socketId: string): Promise<UpstreamView> {
  const row = await d.store.get(socketId);
  if (!row) throw new InputError('not_found', `no upstream socket ${socketId}`, 404);
  const now = d.clock();
  const view = viewOf(row, now);
  if (row.redundancy !== 2) return view;
  const twin = await d.store.get(slotRowId(socketId));
  const slots: SlotView[] = [row, twin].map((r, i) => {
    const v = r ? viewOf(r, now) : undefined;
    return { slot: i === 0 ? 1 : 2, owner: v?.owner ?? null, status: v?.status ?? 'pending', isActive: v?.isActive ?? false };
  });
  return { ...view, degraded: row.desired === 'open' && slots.some((x) => x.owner === null), slots };
}

export async function closeUpstream(
  d: ControlDeps,
  socketId: string,
  caller: ControlCaller = {},
): Promise<{ socketId: string; desired: string; status: string }> {
  const row = await d.store.requestClose(socketId, d.clock(), caller.principal);
  if (row.redundancy === 2) await closeSlot(d, socketId, caller);
  try {
    await d.commands.send('close', socketId);
  } catch (err) {
    // The owner's counter writes are conditioned on desired=open (an active socket closes within
    // a counter flush period); an idle one stays open until its agent stops or restarts.
    d.log.warn('close command not sent; the owner closes at its next counter write, or when it stops', { socketId, err });
  }
  d.log.info('upstream close requested', { socketId, status: row.status, principal: caller.principal });
  return { socketId, desired: row.desired, status: row.status };
}

/** Closes the second slot row of a socket, if it has one (a POST without redundancy, or a DELETE). */
async function closeSlot(d: ControlDeps, socketId: string, caller: ControlCaller): Promise<void> {
  try {
    await d.store.requestClose(slotRowId(socketId), d.clock(), caller.principal);
  } catch (err) {
    if ((err as InputError).code !== 'not_found') throw err;
  }
}

export const LIST_DEFAULT_LIMIT = 50;
export const LIST_MAX_LIMIT = 100;

export async function listUpstreams(
  d: ControlDeps,
  query: Readonly<Record<string, string | undefined>> | undefined,
): Promise<{ items: UpstreamView[]; cursor: string | null }> {
  let limit = LIST_DEFAULT_LIMIT;
  if (query?.limit !== undefined) {
    if (!/^\d+$/.test(query.limit) || Number(query.limit) < 1 || Number(query.limit) > LIST_MAX_LIMIT) {
      throw new InputError('invalid_limit', `query parameter limit must be an integer from 1 to ${LIST_MAX_LIMIT}`);
    }
    limit = Number(query.limit);
  }
  const page = await d.store.list({ limit, cursor: query?.cursor });
  const now = d.clock();
  return { items: page.items.map((r) => viewOf(r, now)), cursor: page.cursor ?? null };
}
