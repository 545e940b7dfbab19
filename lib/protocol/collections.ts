/**
 * Collection names (lib/collections.ts has the server's rules): `battery:*` names the
 * collection `battery`, every topic up to its last `:`. Dependency-free: the client SDK imports it.
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

