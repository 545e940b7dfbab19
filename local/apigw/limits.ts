import type { WebSocket } from 'ws';
import {
  API_GATEWAY_FRAME_BYTES,
  API_GATEWAY_IDLE_TIMEOUT_MS,
  API_GATEWAY_INTEGRATION_TIMEOUT_MS,
  API_GATEWAY_MAX_CONNECTION_MS,
  API_GATEWAY_MESSAGE_BYTES,
} from '../../lib/protocol/limits';

/**
 * The emulator's view of API Gateway's WebSocket limits (declared once in lib/protocol/limits.ts).
 * AWS: "a message larger than 32 KB must be split into multiple frames, each 32 KB or smaller.
 * This applies to @connections commands. If a larger message (or larger frame size) is received,
 * the connection is closed with code 1009."
 */
export const LIMITS = {
  frameBytes: API_GATEWAY_FRAME_BYTES,
  messageBytes: API_GATEWAY_MESSAGE_BYTES,
  idleTimeoutMs: API_GATEWAY_IDLE_TIMEOUT_MS,
  maxDurationMs: API_GATEWAY_MAX_CONNECTION_MS,
  integrationTimeoutMs: API_GATEWAY_INTEGRATION_TIMEOUT_MS,
  /**
   * Not an AWS quota: AWS documents no per-connection send buffer. The emulator's own bound on
   * server→client bytes waiting for a client that does not read (beyond what the OS buffers):
   * 1 MiB, eight maximum-size messages. Past it the connection is closed (see connection.ts).
   */
  sendBufferBytes: 1024 * 1024,
} as const;

export const CLOSE_MESSAGE_TOO_BIG = 1009;

export type SizeViolation = { kind: 'frame' | 'message'; bytes: number; limit: number };

/**
 * Watches the raw client→server byte stream and reports the first frame over `frameLimit` or
 * message over `messageLimit`, from the frame headers alone (RFC 6455 §5.2), before the payload
 * arrives.
 *
 * Why not only `ws`'s `maxPayload`: it counts the whole (possibly fragmented) message, not each
 * frame, and `ws` does not expose frame boundaries. So the emulator prepends a `data` listener on
 * the upgraded TCP socket that runs this parser on the same chunks `ws` receives; `maxPayload`
 * stays as a backstop. Extensions are not negotiated (`perMessageDeflate: false`, API Gateway
 * does not compress either), so the header length is the payload length.
 */
export class FrameSizeGuard {
  private header = Buffer.alloc(0);
  private skip = 0; // payload bytes of the current frame still to pass over
  private messageBytes = 0;
  private tripped = false;

  constructor(
    private readonly frameLimit: number,
    private readonly messageLimit: number,
  ) {}

  /** Feeds one chunk; returns the first violation (once), else undefined. */
  push(chunk: Buffer): SizeViolation | undefined {
    if (this.tripped) return undefined;
    let off = 0;
    while (off < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - off);
        this.skip -= n;
        off += n;
        continue;
      }
      // Accumulate header bytes until the whole header (2..14 bytes) is known.
      const take = Math.min(14 - this.header.length, chunk.length - off);
      const buf = Buffer.concat([this.header, chunk.subarray(off, off + take)]);
      const parsed = parseHeader(buf);
      if (!parsed) {
        this.header = buf;
        off += take;
        continue;
      }
      // Only the header's bytes are consumed; the rest of `buf` beyond it belongs to the payload.
      off += parsed.headerLength - this.header.length;
      this.header = Buffer.alloc(0);
      this.skip = parsed.payloadLength;
      const violation = this.account(parsed.opcode, parsed.payloadLength);
      if (violation) {
        this.tripped = true;
        return violation;
      }
    }
    return undefined;
  }

  private account(opcode: number, length: number): SizeViolation | undefined {
    if (opcode >= 0x8) return undefined; // control frames (close/ping/pong): ≤ 125 bytes by RFC, not messages
    if (length > this.frameLimit) return { kind: 'frame', bytes: length, limit: this.frameLimit };
    this.messageBytes = opcode === 0x0 ? this.messageBytes + length : length;
    if (this.messageBytes > this.messageLimit) return { kind: 'message', bytes: this.messageBytes, limit: this.messageLimit };
    return undefined;
  }
}

interface FrameHeader {
  opcode: number;
  payloadLength: number;
  headerLength: number;
}

/** Parses a frame header from the start of `buf`, or undefined when more bytes are needed. */
export function parseHeader(buf: Buffer): FrameHeader | undefined {
  if (buf.length < 2) return undefined;
  const opcode = buf[0] & 0x0f;
  const masked = (buf[1] & 0x80) !== 0;
  const len7 = buf[1] & 0x7f;
  const extLen = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
  const headerLength = 2 + extLen + (masked ? 4 : 0);
  if (buf.length < headerLength) return undefined;
  let payloadLength = len7;
  if (len7 === 126) payloadLength = buf.readUInt16BE(2);
  else if (len7 === 127) {
    const big = buf.readBigUInt64BE(2);
    payloadLength = big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(big);
  }
  return { opcode, payloadLength, headerLength };
}

/**
 * Sends one message split into frames of at most `frameLimit` bytes, as API Gateway does for
 * @connections posts and route responses. `ws` emits continuation frames for `fin: false`
 * sends; the loop is synchronous, so no other message can interleave its frames.
 */
export function sendFragmented(ws: WebSocket, data: Buffer, text: boolean, frameLimit: number): void {
  if (data.length <= frameLimit) {
    ws.send(data, { binary: !text, fin: true });
    return;
  }
  for (let off = 0; off < data.length; off += frameLimit) {
    const end = Math.min(off + frameLimit, data.length);
    ws.send(data.subarray(off, end), { binary: !text, fin: end === data.length });
  }
}
