/**
 * $disconnect: remove the connection row and every subscription row of the connection.
 * API Gateway calls it on a best-effort basis only (its docs say so), which is why fan-out
 * also prunes on 410 and why every row carries an `expiresAt`.
 */
export async function disconnect(
  connectionId: string,
  deps: { removeConnections(ids: readonly string[], opts?: { seenAt?: number }): Promise<number> },
  /** When the socket closed (presence records it as the user's lastSeen). */
  at?: number,
): Promise<number> {
  return deps.removeConnections([connectionId], at !== undefined ? { seenAt: at } : {});
}
