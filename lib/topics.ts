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

export function topicProblem(topic: unknown): string | undefined {
  if (typeof topic !== 'string') return 'topic must be a string';
  if (topic.length === 0) return 'topic must not be empty';
  if (topic.length > MAX_TOPIC_LENGTH) return `topic is ${topic.length} characters; the limit is ${MAX_TOPIC_LENGTH}`;
  if (CONTROL.test(topic)) return 'topic must not contain control characters';
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
