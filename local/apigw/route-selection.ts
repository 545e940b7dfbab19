import { EmulatorOptionError } from './errors';

/**
 * Route selection for MESSAGE frames, as API Gateway does it for `$request.body.<path>`
 * expressions (https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-develop-routes.html):
 * the frame is parsed as JSON, the expression's path is looked up, and a route whose key equals
 * that value is chosen. A frame that is not JSON, has no value at the path, or whose value
 * matches no route goes to `$default`; with no `$default` either, there is no route (API Gateway
 * then answers the client with a "Forbidden" error frame, see websocket-emulator.ts).
 */

export const DEFAULT_ROUTE_SELECTION_EXPRESSION = '$request.body.action';

export interface RouteSelector {
  readonly expression: string;
  /** The route key for this frame's text, or undefined when neither a match nor `$default` exists. */
  select(body: string, routeKeys: ReadonlySet<string>): string | undefined;
}

const PREFIX = '$request.body.';
const SEGMENT = /^[A-Za-z0-9_\-$]+$/;

/** Parses `$request.body.a.b` into a selector; anything else is an EmulatorOptionError naming the form. */
export function routeSelector(expression: string = DEFAULT_ROUTE_SELECTION_EXPRESSION): RouteSelector {
  if (typeof expression !== 'string' || !expression.startsWith(PREFIX)) {
    throw new EmulatorOptionError(
      'routeSelectionExpression',
      `expected "$request.body.<property>[.<property>...]", got ${JSON.stringify(expression)}`,
    );
  }
  const path = expression.slice(PREFIX.length).split('.');
  if (path.some((s) => !SEGMENT.test(s))) {
    throw new EmulatorOptionError('routeSelectionExpression', `bad property path in ${JSON.stringify(expression)}`);
  }
  return {
    expression,
    select(body, routeKeys) {
      const value = valueAt(body, path);
      if (value !== undefined && routeKeys.has(value)) return value;
      return routeKeys.has('$default') ? '$default' : undefined;
    },
  };
}

/** The selection value as a string, or undefined (not JSON, path missing, or not a scalar). */
export function valueAt(body: string, path: readonly string[]): string | undefined {
  let node: unknown;
  try {
    node = JSON.parse(body);
  } catch {
    return undefined;
  }
  for (const key of path) {
    if (node === null || typeof node !== 'object' || Array.isArray(node)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  if (typeof node === 'string') return node;
  if (typeof node === 'number' || typeof node === 'boolean') return String(node);
  return undefined;
}
