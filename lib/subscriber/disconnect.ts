/**
 * $disconnect: remove the connection row and every subscription row of the connection.
 * API Gateway calls it on a best-effort basis only (its docs say so), which is why fan-out
 * also prunes on 410 and why every row carries an `expiresAt`.
 */
export async function disconnect(
  connectionId: string,
  deps: { removeConnections(ids: readonly string[]): Promise<number> },
): Promise<number> {
  return deps.removeConnections([connectionId]);
}
