/** `ws`'s WebSocket: Node 20 has no global one; the SDK takes it as is. */
export { WebSocket as NodeWebSocket } from 'ws';

export async function publish(httpUrl: string, topic: string, data: unknown, headers: Record<string, string> = {}): Promise<number> {
  const r = await fetch(`${httpUrl}/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ topic, data }),
  });
  const body = (await r.json()) as { seq?: number; code?: string; message?: string };
  if (!r.ok || typeof body.seq !== 'number') throw new Error(`publish ${topic}: HTTP ${r.status} ${JSON.stringify(body)}`);
  return body.seq;
}

export { waitFor } from '../../support/wait';

export const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
