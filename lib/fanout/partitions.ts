/**
 * How a large topic's subscribers are split into partitions (docs/architecture of fan-out in
 * docs/performance.md, "Large topics in parallel").
 *
 * A partition is a contiguous range of the subscriptions table's sort key (connectionId), with
 * fixed bounds that depend only on the number of partitions P. So:
 * - every subscriber is in exactly one partition (the ranges tile the whole key space: the first
 *   is unbounded below, the last unbounded above, each bound is the next range's lower bound);
 * - a subscriber stays in its partition for as long as it stays subscribed (its id never changes),
 *   so one partition worker carries all of its records, in order;
 * - a partition worker reads only its own range with a key condition (one Query per page of its
 *   share), not the whole topic: P workers read the topic once between them.
 *
 * The bounds are spread over API Gateway's connection ids, 16 base64 characters of random bytes
 * (local/apigw/connection-id.ts), whose first two characters are uniform over the 64-character
 * alphabet: each range gets ~1/P of the subscribers. Ids of another shape still land in exactly
 * one range; only the balance would differ.
 */

/** Most partitions a topic may be split into: one message per partition and record (SendMessageBatch takes 10). */
export const MAX_PARTITIONS = 100;

/** The base64 alphabet in byte order, as DynamoDB orders sort keys (UTF-8 bytes). */
const ALPHABET = [...'+/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'].sort().join('');
const SPAN = ALPHABET.length * ALPHABET.length;

/** One partition's key range: `from` ≤ connectionId < `to`; an absent bound is open. */
export interface PartitionRange {
  readonly partition: number;
  readonly partitions: number;
  readonly from?: string;
  readonly to?: string;
}

export function checkPartitions(partitions: number): void {
  if (!Number.isSafeInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS) {
    throw new RangeError(`partitions is ${partitions}; expected an integer from 1 to ${MAX_PARTITIONS}`);
  }
}

/** Lower bound of partition k (k ≥ 1): two alphabet characters, ASCII, so JS and DynamoDB order them alike. */
function lowerBound(k: number, partitions: number): string {
  const i = Math.floor((k * SPAN) / partitions);
  return ALPHABET[Math.floor(i / ALPHABET.length)]! + ALPHABET[i % ALPHABET.length]!;
}

export function partitionRange(partition: number, partitions: number): PartitionRange {
  checkPartitions(partitions);
  if (!Number.isSafeInteger(partition) || partition < 0 || partition >= partitions) {
    throw new RangeError(`partition is ${partition}; expected an integer from 0 to ${partitions - 1}`);
  }
  return {
    partition,
    partitions,
    ...(partition > 0 ? { from: lowerBound(partition, partitions) } : {}),
    ...(partition < partitions - 1 ? { to: lowerBound(partition + 1, partitions) } : {}),
  };
}

/** Every partition of a split into `partitions`, in key order. */
export function partitionRanges(partitions: number): PartitionRange[] {
  checkPartitions(partitions);
  return Array.from({ length: partitions }, (_, k) => partitionRange(k, partitions));
}

/**
 * Whether an id is inside the range. The bounds are ASCII, and comparing a string with an ASCII
 * one by UTF-16 code units gives the same answer as by UTF-8 bytes (DynamoDB's order).
 */
export function inRange(connectionId: string, r: PartitionRange): boolean {
  return (r.from === undefined || connectionId >= r.from) && (r.to === undefined || connectionId < r.to);
}

/** The partition a connection belongs to in a split into `partitions`. */
export function partitionOf(connectionId: string, partitions: number): number {
  checkPartitions(partitions);
  // Binary search over the lower bounds 1..P-1.
  let lo = 0;
  let hi = partitions - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (connectionId >= lowerBound(mid, partitions)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
