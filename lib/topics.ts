import { InputError } from './errors';

/**
 * Topic names and the patterns that grant access to them.
 * A topic is 1–256 characters with no control characters; `:` separates its parts by
 * convention (`vehicle:3`, `platform:acme:42`). A pattern is a topic, a prefix ending in `*`
 * (`vehicle:*`), or `*` alone.
 */

export const MAX_TOPIC_LENGTH = 256;
// C0 controls, DEL and C1 controls: they break logs, terminals and key-based tooling.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// With the `u` flag a surrogate class matches only unpaired halves (a pair is one code point).
const LONE_SURROGATE = /[\ud800-\udfff]/u;

/**
 * A lone UTF-16 surrogate has no UTF-8 encoding: DynamoDB, API Gateway and JSON encoders replace
 * it with U+FFFD, so two different names would become one key (and a grant for one would match
 * the other).
 */
export function hasLoneSurrogate(s: string): boolean {
  return LONE_SURROGATE.test(s);
}

export function topicProblem(topic: unknown): string | undefined {
  if (typeof topic !== 'string') return 'topic must be a string';
  if (topic.length === 0) return 'topic must not be empty';
  if (topic.length > MAX_TOPIC_LENGTH) return `topic is ${topic.length} characters; the limit is ${MAX_TOPIC_LENGTH}`;
  if (CONTROL.test(topic)) return 'topic must not contain control characters';
  if (hasLoneSurrogate(topic)) return 'topic must not contain a lone UTF-16 surrogate';
  return undefined;
}

export function assertTopic(topic: unknown): string {
  const p = topicProblem(topic);
  if (p) throw new InputError('invalid_topic', p);
  return topic as string;
}

export function topicMatches(pattern: string, topic: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('*')) return topic.startsWith(pattern.slice(0, -1));
  return pattern === topic;
}

export function topicAllowed(patterns: readonly string[], topic: string): boolean {
  return patterns.some((p) => topicMatches(p, topic));
}
