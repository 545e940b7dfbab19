import { topicProblem } from './topics';

/**
 * Collections (issue 14): a collection is every topic sharing the prefix up to its last `:`
 * (`battery:1`, `battery:2` → collection `battery`; `platform:acme:42` → `platform:acme`). A
 * subscriber names one with the pattern `<collection>:*`. A topic without `:` belongs to none.
 *
 * The items table stores each member's collection in the `collection` attribute (written by
 * ItemStore.write), which keys the `byCollection` index the snapshot reads; fan-out finds a
 * record's collection subscribers under the pattern in the subscriptions table.
 */

export const COLLECTION_WILDCARD = ':*';

/** Members a collection snapshot sends at most unless COLLECTION_MAX_MEMBERS says otherwise. */
export const DEFAULT_COLLECTION_MAX_MEMBERS = 1000;

/** The collection `topic` belongs to, or undefined when it has no `:` (or is itself a pattern). */
export function collectionOf(topic: string): string | undefined {
  if (isCollectionPattern(topic)) return undefined;
  const i = topic.lastIndexOf(':');
  return i > 0 ? topic.slice(0, i) : undefined;
}

/** `battery:*` → true: a subscribe to it is a collection subscribe. */
export function isCollectionPattern(topic: string): boolean {
  return topic.length > COLLECTION_WILDCARD.length && topic.endsWith(COLLECTION_WILDCARD);
}

/** `battery:*` → `battery`. */
export function patternCollection(pattern: string): string {
  if (!isCollectionPattern(pattern)) throw new Error(`"${pattern}" is not a collection pattern (<collection>:*)`);
  return pattern.slice(0, -COLLECTION_WILDCARD.length);
}

/** `battery` → `battery:*`: the subscriptions-table key of the collection's subscribers. */
export function collectionPattern(collection: string): string {
  return collection + COLLECTION_WILDCARD;
}

/**
 * Why `topic` cannot be written (published to), or undefined. A name ending in `:*` is a
 * collection pattern: an item under it would be delivered to the collection's subscribers as if
 * it were the collection, and would itself be a member of the collection it names.
 */
export function writableTopicProblem(topic: unknown): string | undefined {
  const p = topicProblem(topic);
  if (p) return p;
  if (isCollectionPattern(topic as string)) return `topic "${topic as string}" ends in "${COLLECTION_WILDCARD}", which names a collection; publish to one of its members`;
  return undefined;
}
