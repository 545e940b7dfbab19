/**
 * Server-side protocol limits, in one place so the docs, the validators and the tests agree. The
 * wire limits a client also needs (frame sizes, id length, API Gateway's) are in
 * `lib/protocol/limits.ts`.
 */
export { MAX_CLIENT_FRAME_BYTES, MAX_IDEMPOTENCY_KEY_LENGTH } from '../protocol/limits';

/** Topics one connection may hold; bounds the connection row (DynamoDB items stop at 400 KB) and $disconnect's cleanup. */
export const MAX_TOPICS_PER_CONNECTION = 100;

/**
 * A `sinceSeq` resume replays at most this many history rows; a longer gap gets a snapshot with
 * `"reset":true` instead, so one subscribe call stays well inside API Gateway's 29 s integration timeout.
 */
export const MAX_REPLAY_EVENTS = 1000;

/**
 * A replay reads history one Query page of this many rows at a time (the next page is read while
 * the current one is sent), so a 1,000-event resume never holds the whole range in memory.
 */
export const REPLAY_PAGE_SIZE = 100;

/**
 * Frames of one replay page in flight at once. The client SDK holds back events that arrive
 * ahead of a gap and releases them in seq order (client/topic-tracker.ts, buffer of 1,000 > one
 * page), so parallel posts cannot reorder what the application sees; sequential posts would make
 * a 1,000-event replay cost 1,000 round trips (30 ms each on AWS: 30 s, past API Gateway's 29 s).
 */
export const REPLAY_CONCURRENCY = 8;

/** Worst-case digits for seq and latencyMs when sizing a frame before it has a seq. */
export const WORST_CASE_NUMBER = Number.MAX_SAFE_INTEGER;

/**
 * How long an idempotency key of a topic publish is remembered: a retry within this window is
 * answered with the first seq and writes nothing. 24 h, the default history window: a client
 * still retrying after a day has lost more than one response.
 */
export const IDEMPOTENCY_WINDOW_SECONDS = 24 * 3600;
