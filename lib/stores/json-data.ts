import { hasLoneSurrogate } from '../topics';

/**
 * What JSON data the items and history tables can hold exactly as it was sent, and the form the
 * document client must be handed so that it does.
 *
 * JSON.parse accepts values that cannot be stored faithfully, and the DynamoDB marshaller fails
 * on some valid objects with an unhelpful error (a 500 to the publisher):
 *  - numbers beyond ±(2^53 − 1): JSON.parse has already rounded them (9007199254740993 becomes
 *    …992), and the marshaller refuses them; `1e400` parses to Infinity, which has no JSON form;
 *  - a key named `__proto__`: the marshaller and unmarshaller assign keys to plain objects, so the
 *    key silently disappears;
 *  - lone UTF-16 surrogates in strings or keys: they have no UTF-8 form and come back as U+FFFD;
 *  - nesting deeper than DynamoDB's 32 levels per item (a ValidationException after a round trip, and a
 *    stack overflow in the recursive marshaller for pathological depths).
 * Those are refused with a message naming the path. A key named `constructor` is valid and
 * stored: `toStorable` hands every object to the marshaller as a `Map`, which it converts key by
 * key instead of guessing the type from `value.constructor.name` (which `{"constructor":1}` or
 * `{"constructor":{"name":"Map"}}` would fool).
 */

/**
 * Deepest nesting of maps and lists inside `data`. DynamoDB allows 32 levels per item and the
 * item itself is the first (DynamoDB Local refuses 32 nested lists in `data`, accepts 31).
 */
export const MAX_DATA_DEPTH = 31;

/** Why `data` cannot be stored faithfully, or undefined. Iterative: depth cannot overflow the stack. */
export function dataProblem(data: unknown): string | undefined {
  const stack: [unknown, number, string][] = [[data, 1, 'data']];
  while (stack.length > 0) {
    const [v, depth, path] = stack.pop()!;
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return `${path} is a number outside the range of a double (such as 1e400); send it as a string`;
      if (Math.abs(v) > Number.MAX_SAFE_INTEGER) {
        return `${path} is a number beyond ±9007199254740991 (2^53 − 1), which cannot be carried exactly; send it as a string`;
      }
    } else if (typeof v === 'string') {
      if (hasLoneSurrogate(v)) return `${path} contains a lone UTF-16 surrogate, which has no UTF-8 form`;
    } else if (typeof v === 'object' && v !== null) {
      if (depth > MAX_DATA_DEPTH) return `${path} is nested deeper than ${MAX_DATA_DEPTH} levels (DynamoDB's limit of 32 per item, the item included)`;
      if (Array.isArray(v)) {
        for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], depth + 1, `${path}[${i}]`]);
      } else {
        for (const k of Object.keys(v)) {
          const at = `${path}[${JSON.stringify(k)}]`;
          if (k === '__proto__') return `${at}: the key "__proto__" cannot be stored`;
          if (hasLoneSurrogate(k)) return `${at}: the key contains a lone UTF-16 surrogate, which has no UTF-8 form`;
          stack.push([(v as Record<string, unknown>)[k], depth + 1, at]);
        }
      }
    }
  }
  return undefined;
}

/** `data` with every object as a Map, so the marshaller stores its keys as they are (see above). */
export function toStorable(data: unknown): unknown {
  if (Array.isArray(data)) return data.map(toStorable);
  if (typeof data === 'object' && data !== null) {
    return new Map(Object.keys(data).map((k) => [k, toStorable((data as Record<string, unknown>)[k])]));
  }
  return data;
}

/** Data the tables cannot hold faithfully (see `dataProblem`); nothing was written. */
export class InvalidDataError extends Error {
  readonly code = 'invalid_data';
  constructor(problem: string) {
    super(problem);
    this.name = 'InvalidDataError';
  }
}
