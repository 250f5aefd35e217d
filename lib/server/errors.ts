/**
 * OpenAI-shaped errors: every failure the server returns is
 * `{"error": {"message", "type", "param", "code"}}` with a matching HTTP status. The domain's
 * errors (lib/masks/errors.ts) become HTTP errors here, in {@link toApiError}, and nowhere else.
 */

import { MaskRequestConflictError, UnknownMaskError } from "../masks/errors.ts";

/** The `type` field of an OpenAI error body. */
export type ApiErrorType =
  | "invalid_request_error"
  | "not_found_error"
  | "request_too_large"
  | "rate_limit_error"
  | "service_unavailable"
  | "timeout_error"
  | "server_error";

/** The JSON body of an error response. */
export interface ApiErrorBody {
  error: { message: string; type: ApiErrorType; param: string | null; code: string | null };
}

/** An error that knows its HTTP status and OpenAI error shape. Thrown by handlers, caught once. */
export class ApiError extends Error {
  override name = "ApiError";
  /**
   * @param status HTTP status (400, 404, 413, 429, 503, 504, 500)
   * @param type OpenAI error type
   * @param message human-readable explanation
   * @param param the offending request field (dotted path), if any
   * @param code a short machine code, if any
   * @param headers extra response headers (e.g. Retry-After)
   */
  constructor(
    readonly status: number,
    readonly type: ApiErrorType,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  /** The JSON body for this error. */
  body(): ApiErrorBody {
    return {
      error: { message: this.message, type: this.type, param: this.param, code: this.code },
    };
  }

  /** A complete Response for this error. */
  toResponse(extraHeaders: Record<string, string> = {}): Response {
    return new Response(JSON.stringify(this.body()), {
      status: this.status,
      headers: {
        "content-type": "application/json; charset=utf-8",
        ...this.headers,
        ...extraHeaders,
      },
    });
  }
}

/** 400: the request is malformed or uses an option this server does not support. */
export function badRequest(
  message: string,
  param: string | null = null,
  code: string | null = null,
) {
  return new ApiError(400, "invalid_request_error", message, param, code);
}

/** 404: unknown model, mask or route. */
export function notFound(message: string, param: string | null = null, code: string | null = null) {
  return new ApiError(404, "not_found_error", message, param, code);
}

/** 413: body or prompt too large. */
export function tooLarge(message: string, param: string | null = null, code: string | null = null) {
  return new ApiError(413, "request_too_large", message, param, code);
}

/** 429: queue full; the client should retry after `retryAfterS` seconds. */
export function overloaded(retryAfterS: number): ApiError {
  return new ApiError(
    429,
    "rate_limit_error",
    "The server is at capacity (request queue full); retry later.",
    null,
    "queue_full",
    { "retry-after": String(Math.max(1, Math.ceil(retryAfterS))) },
  );
}

/** 503: model or masks not loaded yet (or failed to load). */
export function notReady(message = "The model is still loading; retry later."): ApiError {
  return new ApiError(503, "service_unavailable", message, null, "not_ready", {
    "retry-after": "5",
  });
}

/** 504: the request ran past the per-request timeout. */
export function timedOut(ms: number): ApiError {
  return new ApiError(
    504,
    "timeout_error",
    `The request did not finish within the server's ${ms} ms timeout.`,
    null,
    "timeout",
  );
}

/**
 * Convert anything thrown into an {@link ApiError}: a mask request naming a mask or sparsity
 * the server lacks is a 404 (`seap.mask` / `seap.sparsity`), one whose fields contradict each
 * other a 400; unknown errors become a 500.
 */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof UnknownMaskError) {
    return notFound(e.message, `seap.${e.field}`, "mask_not_found");
  }
  if (e instanceof MaskRequestConflictError) {
    return badRequest(e.message, `seap.${e.field}`, "invalid_value");
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new ApiError(500, "server_error", `Internal error: ${msg}`, null, "internal_error");
}
