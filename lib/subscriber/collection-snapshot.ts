import { patternCollection } from '../collections';
import { collectionItemJson, collectionSnapshotFrame, collectionSnapshotHead, collectionSnapshotTail } from '../protocol/frames';
import { BATCH_GET_LIMIT, type CollectionStore } from '../stores/collections';

/**
 * The reply to a collection subscribe (`battery:*`): every member's current state, packed into
 * as few frames as API Gateway's message limit allows (128 KB; a bigger message is refused with
 * 413 and never arrives). Every frame but the last carries `"more":true`, so the client knows
 * when its view of the collection is complete.
 *
 * - A member whose state alone does not fit a frame goes as a placeholder with its seq,
 *   `"data":null,"truncated":true` (as a single-topic snapshot does).
 * - Past `cap` members (COLLECTION_MAX_MEMBERS, default 1,000) only the first `cap` in topic
 *   order are sent and the last frame carries `"truncated":true`: one subscribe's reads and
 *   posts stay bounded, well inside the route's 29 s integration timeout.
 */

export interface CollectionSnapshotDeps {
  readonly collections: CollectionStore;
  readonly send: (frame: string) => Promise<unknown>;
  readonly maxMessageBytes: number;
  readonly cap: number;
}

export interface CollectionSnapshotResult {
  readonly members: number;
  readonly frames: number;
  readonly truncated: boolean;
}

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

export async function sendCollectionSnapshot(pattern: string, deps: CollectionSnapshotDeps): Promise<CollectionSnapshotResult> {
  const { topics, truncated } = await deps.collections.memberTopics(patternCollection(pattern), deps.cap);
  const head = collectionSnapshotHead(pattern);
  // Room for members in any frame: the widest tail is reserved so a frame never has to shrink.
  const room = deps.maxMessageBytes - bytes(head) - bytes(collectionSnapshotTail({ more: true, truncated: true }));
  let body: string[] = [];
  let used = 0;
  let frames = 0;
  let members = 0;
  const flush = async (last: boolean) => {
    await deps.send(collectionSnapshotFrame(pattern, body, last ? { truncated } : { more: true }));
    frames++;
    body = [];
    used = 0;
  };

  for (let i = 0; i < topics.length; i += BATCH_GET_LIMIT) {
    for (const item of await deps.collections.getMany(topics.slice(i, i + BATCH_GET_LIMIT))) {
      let json = collectionItemJson(item);
      let size = bytes(json);
      if (size > room) {
        json = collectionItemJson(item, true);
        size = bytes(json);
      }
      const sep = body.length > 0 ? 1 : 0;
      if (used + sep + size > room) await flush(false);
      used += (body.length > 0 ? 1 : 0) + size;
      body.push(json);
      members++;
    }
  }
  await flush(true);
  return { members, frames, truncated };
}
