import { COLLECTION_WILDCARD, isCollectionPattern } from './protocol/collections';
import { topicProblem } from './topics';

/**
 * Collections: a collection is every topic sharing the prefix up to its last `:`
 * (`battery:1`, `battery:2` → collection `battery`; `platform:acme:42` → `platform:acme`). A
 * subscriber names one with the pattern `<collection>:*`. A topic without `:` belongs to none.
 *
 * The names (dependency-free, shared with the client SDK) are in `protocol/collections.ts`.
 * The items table stores each member's collection in the `collection` attribute (written by
 * ItemStore.write), which keys the `byCollection` index the snapshot reads; fan-out finds a
 * record's collection subscribers under the pattern in the subscriptions table.
 */

export {
  COLLECTION_WILDCARD,
  DEFAULT_COLLECTION_MAX_MEMBERS,
  collectionOf,
  collectionPattern,
  isCollectionPattern,
  patternCollection,
} from './protocol/collections';

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
