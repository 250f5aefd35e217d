/**
 * Reading a request's JSON body defensively: the media type must be JSON, `Content-Encoding`
 * gzip / deflate is decompressed (others are refused), the decoded size is capped (so a
 * compressed bomb is a 413, not an out-of-memory), the bytes must be strict UTF-8, and a
 * client that stops sending mid-body gets a 408 after the read timeout instead of holding a
 * connection and a buffer forever.
 */

import { ApiError, badRequest, tooLarge } from "./errors.ts";

/** Limits of {@link readJsonBody}. */
export interface BodyLimits {
  /** Most bytes of the (decoded) body. */
  maxBodyBytes: number;
  /** Most ms to wait for the whole body (0 = no limit). */
  readTimeoutMs: number;
}

/** 415: a media type or content coding the server does not read. */
export function unsupportedMedia(message: string, code: string): ApiError {
  return new ApiError(415, "invalid_request_error", message, null, code);
}

/** 408: the client did not send its body in time. */
export function readTimedOut(ms: number): ApiError {
  return new ApiError(
    408,
    "invalid_request_error",
    `The request body did not arrive within ${ms} ms`,
    null,
    "request_timeout",
  );
}

/**
 * Check the `Content-Type` header: absent, `application/json` or `application/<x>+json`
 * (any parameters; a charset other than UTF-8 is refused). Anything else is a 415.
 */
export function checkJsonMediaType(header: string | null): void {
  if (header === null || header.trim() === "") return;
  const [type, ...params] = header.split(";").map((p) => p.trim().toLowerCase());
  if (type !== "application/json" && !/^application\/[a-z0-9.+-]*\+json$/.test(type)) {
    throw unsupportedMedia(
      `Content-Type '${header.slice(0, 100)}' is not supported; send application/json`,
      "unsupported_media_type",
    );
  }
  for (const p of params) {
    const [k, v] = p.split("=").map((x) => x.trim().replace(/^"|"$/g, ""));
    if (k === "charset" && v !== "utf-8" && v !== "utf8") {
      throw unsupportedMedia(
        `Content-Type charset '${v.slice(0, 40)}' is not supported; send UTF-8`,
        "unsupported_media_type",
      );
    }
  }
}

/** The decoding chain of a `Content-Encoding` header (outermost last), or a 415. */
function codings(header: string | null): CompressionFormat[] {
  if (header === null) return [];
  const out: CompressionFormat[] = [];
  for (const raw of header.split(",")) {
    const c = raw.trim().toLowerCase();
    if (c === "" || c === "identity") continue;
    if (c === "gzip" || c === "x-gzip") out.push("gzip");
    else if (c === "deflate") out.push("deflate");
    else {
      throw unsupportedMedia(
        `Content-Encoding '${c.slice(0, 40)}' is not supported; use gzip, deflate or none`,
        "unsupported_content_encoding",
      );
    }
  }
  if (out.length > 2) {
    throw unsupportedMedia(
      "More than two stacked content codings are not supported",
      "unsupported_content_encoding",
    );
  }
  return out;
}

/**
 * Read `req`'s body as a JSON object under `limits`; every failure is an {@link ApiError}
 * (400 bad JSON / UTF-8 / compression, 408 slow client, 413 too large, 415 media type).
 */
export async function readJsonBody(req: Request, limits: BodyLimits): Promise<unknown> {
  const { maxBodyBytes: maxBytes, readTimeoutMs } = limits;
  checkJsonMediaType(req.headers.get("content-type"));
  const chain = codings(req.headers.get("content-encoding"));
  const declared = Number(req.headers.get("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > maxBytes) {
    await req.body?.cancel().catch(() => {});
    throw tooLarge(
      `Request body of ${declared} bytes exceeds the ${maxBytes}-byte limit`,
      null,
      "body_too_large",
    );
  }
  if (!req.body) {
    throw badRequest("The request body is empty; expected a JSON object", null, "invalid_json");
  }
  let stream: ReadableStream<Uint8Array> = req.body;
  // Decode innermost-first: the header lists codings in the order they were applied.
  for (const c of [...chain].reverse()) {
    stream = stream.pipeThrough(
      new DecompressionStream(c) as TransformStream<Uint8Array, Uint8Array>,
    );
  }
  const reader = stream.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = readTimeoutMs > 0
    ? new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), readTimeoutMs)))
    : null;
  try {
    while (true) {
      let chunk: ReadableStreamReadResult<Uint8Array> | "timeout";
      try {
        chunk = timeout ? await Promise.race([reader.read(), timeout]) : await reader.read();
      } catch {
        throw chain.length > 0
          ? badRequest(
            `The request body is not valid ${chain.join(" + ")} data`,
            null,
            "invalid_encoding",
          )
          : badRequest("The request body could not be read", null, "invalid_body");
      }
      if (chunk === "timeout") throw readTimedOut(readTimeoutMs);
      if (chunk.done) break;
      total += chunk.value.length;
      if (total > maxBytes) {
        throw tooLarge(
          `Request body exceeds the ${maxBytes}-byte limit${
            chain.length ? " once decompressed" : ""
          }`,
          null,
          "body_too_large",
        );
      }
      parts.push(chunk.value);
    }
  } catch (e) {
    reader.cancel().catch(() => {});
    throw e;
  } finally {
    clearTimeout(timer);
  }
  const bytes = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    bytes.set(p, o);
    o += p.length;
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw badRequest("The request body is not valid UTF-8", null, "invalid_encoding");
  }
  if (text.trim() === "") {
    throw badRequest("The request body is empty; expected a JSON object", null, "invalid_json");
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw badRequest(
      `The request body is not valid JSON: ${(err as Error).message}`,
      null,
      "invalid_json",
    );
  }
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    throw badRequest("The request body must be a JSON object", null, "invalid_json");
  }
  return body;
}
