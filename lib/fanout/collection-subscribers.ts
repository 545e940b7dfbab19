import { collectionOf, collectionPattern } from '../collections';

/**
 * Fan-out's subscriber list for a record, with collections (lib/collections.ts): the
 * subscribers of the record's collection (rows under `battery:*`: one extra Query per record of
 * a topic that has a collection) and those of the topic itself, each connection ONCE.
 *
 * The dedupe is here, in fan-out, per connection and record, rather than in the client: a
 * connection subscribed to both `battery:*` and `battery:2` would otherwise be posted every change
 * of `battery:2` twice (twice the @connections calls, twice its bandwidth), and both copies would
 * share the one lane that keeps its per-topic order. Collection subscribers are listed first and
 * remembered for the record; the topic's own pages are then filtered against them, so the memory
 * is one id per collection subscriber, never per topic subscriber (topics are the large side).
 */
export function withCollectionSubscribers(
  subscribers: (topic: string) => AsyncIterable<string[]>,
): (topic: string) => AsyncIterable<string[]> {
  return (topic) => {
    const collection = collectionOf(topic);
    return collection === undefined ? subscribers(topic) : union(subscribers(collectionPattern(collection)), () => subscribers(topic));
  };
}

async function* union(first: AsyncIterable<string[]>, second: () => AsyncIterable<string[]>): AsyncGenerator<string[]> {
  const seen = new Set<string>();
  for await (const page of first) {
    const fresh = page.filter((id) => !seen.has(id));
    for (const id of fresh) seen.add(id);
    if (fresh.length) yield fresh;
  }
  for await (const page of second()) {
    const fresh = seen.size === 0 ? page : page.filter((id) => !seen.has(id));
    if (fresh.length) yield fresh;
  }
}
