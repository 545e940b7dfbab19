import { randomBytes } from 'node:crypto';

/**
 * Ids in API Gateway's format. Real connection ids (and request/message ids) are 16 base64
 * characters ending in `=`, e.g. `M9aA1e3uvHcCH1A=`: 11 random bytes in standard base64. So they
 * can contain `+` and `/`, which is why the SDK URL-encodes them in `@connections/{id}` (`%2B`,
 * `%2F`, `%3D`) and why the management API decodes the path segment.
 */
export type IdGenerator = () => string;

export const awsStyleId: IdGenerator = () => randomBytes(11).toString('base64');
