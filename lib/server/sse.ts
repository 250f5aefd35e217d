/**
 * Server-sent events over a ReadableStream whose cancellation (client gone) is reported, so
 * the generation behind it can be stopped.
 */

/** A push-style SSE stream. */
export class SseStream {
  /** The body to put in a Response. */
  readonly body: ReadableStream<Uint8Array>;
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  private closed = false;
  private readonly enc = new TextEncoder();

  /** @param onCancel called once when the client stops reading (disconnect). */
  constructor(onCancel: () => void) {
    this.body = new ReadableStream<Uint8Array>({
      start: (c) => {
        this.controller = c;
      },
      cancel: () => {
        this.closed = true;
        onCancel();
      },
    });
  }

  /** Whether the stream is closed (by us or by the client). */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Send `data: <json>`; ignored once closed. */
  send(data: unknown): void {
    this.raw(`data: ${JSON.stringify(data)}\n\n`);
  }

  /** Send a raw SSE frame; ignored once closed. */
  raw(frame: string): void {
    if (this.closed) return;
    try {
      this.controller.enqueue(this.enc.encode(frame));
    } catch {
      this.closed = true;
    }
  }

  /** Send `data: [DONE]` and close. */
  done(): void {
    this.raw("data: [DONE]\n\n");
    this.close();
  }

  /** Close without a terminator. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.controller.close();
    } catch {
      // already closed
    }
  }
}

/** Headers of an SSE response. */
export const SSE_HEADERS: Record<string, string> = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  "x-accel-buffering": "no",
};
