import { SignJWT } from 'jose';
import type { JwtSettings } from '../../lib/config';

/**
 * In jwt mode the local dashboard needs a token of its own. With an HS256 secret the local stack
 * can mint one (15 minutes, every topic) — a local convenience only: a deployed stack never
 * mints tokens, its users bring them from their identity provider.
 */
export function mintDashboardToken(jwt: JwtSettings): Promise<string> {
  let t = new SignJWT({ [jwt.topicsClaim]: ['*'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject('dashboard')
    .setIssuedAt()
    .setExpirationTime('15m');
  if (jwt.issuer) t = t.setIssuer(jwt.issuer);
  if (jwt.audience) t = t.setAudience(jwt.audience);
  return t.sign(new TextEncoder().encode(jwt.hs256Secret));
}
