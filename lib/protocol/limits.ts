/**
 * API Gateway WebSocket limits, declared once for the server (`lib/`), the client SDK (`client/`)
 * and the emulator (`local/apigw/`). Dependency-free: the browser bundle of the SDK imports it.
 * (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html):
 * "WebSocket frame size 32 KB", "Message payload size 128 KB", "Idle Connection Timeout
 * 10 minutes", "Connection duration 2 hours", "Integration timeout 50 milliseconds - 29 seconds".
 */
export const API_GATEWAY_FRAME_BYTES = 32 * 1024;
export const API_GATEWAY_MESSAGE_BYTES = 128 * 1024;
export const API_GATEWAY_IDLE_TIMEOUT_MS = 10 * 60_000;
export const API_GATEWAY_MAX_CONNECTION_MS = 2 * 60 * 60_000;
export const API_GATEWAY_INTEGRATION_TIMEOUT_MS = 29_000;

/** Control frames (subscribe, unsubscribe, ping) are small; anything bigger is refused before parsing. */
export const MAX_CLIENT_FRAME_BYTES = 4096;

/**
 * Frames that carry application data (`publish`, application actions) may use API Gateway's whole
 * frame: a client cannot send more in one frame anyway (larger frames close the socket with 1009).
 */
export const MAX_DATA_FRAME_BYTES = API_GATEWAY_FRAME_BYTES;

/** Longest idempotency key (`Idempotency-Key` header or `"id"`); a UUID is 36. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 64;
