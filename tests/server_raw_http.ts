/**
 * A raw HTTP/1.1 client over TCP for the hardening tests: it sends bytes exactly as given
 * (paths fetch() would normalise, invalid header bytes, bodies that are not UTF-8, wrong
 * lengths) and parses whatever comes back (content-length, chunked, or until close).
 */

/** A parsed answer, or `status: 0` when the connection closed without one. */
export interface RawResponse {
  status: number;
  headers: Map<string, string>;
  body: string;
}

const enc = new TextEncoder();

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function dechunk(b: Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  let i = 0;
  const dec = new TextDecoder();
  while (i < b.length) {
    const eol = b.indexOf(10, i);
    if (eol < 0) break;
    const size = parseInt(dec.decode(b.subarray(i, eol)).trim(), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(b.subarray(eol + 1, eol + 1 + size));
    i = eol + 1 + size + 2;
  }
  return concat(parts);
}

/** Whether `b` holds a whole response (headers plus a content-length or chunked body). */
function complete(b: Uint8Array): boolean {
  const text = new TextDecoder().decode(b);
  const sep = text.indexOf("\r\n\r\n");
  if (sep < 0) return false;
  const head = text.slice(0, sep).toLowerCase();
  const len = /\r\ncontent-length: *(\d+)/.exec(head);
  if (len) {
    return b.length - (new TextEncoder().encode(text.slice(0, sep)).length + 4) >= Number(len[1]);
  }
  if (head.includes("transfer-encoding: chunked")) return text.endsWith("0\r\n\r\n");
  return false;
}

/**
 * Send one request and read the answer (the request carries `connection: close`).
 * `head` is the request line plus headers without the blank line; `body` raw bytes.
 */
export async function rawRequest(
  port: number,
  head: string,
  body: Uint8Array | null = null,
  timeoutMs = 30_000,
): Promise<RawResponse> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => conn.close(), timeoutMs);
  const chunks: Uint8Array[] = [];
  try {
    const req = enc.encode(`${head}\r\nconnection: close\r\n\r\n`);
    await conn.write(body ? concat([req, body]) : req).catch(() => 0);
    const buf = new Uint8Array(1 << 16);
    while (true) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
      if (complete(concat(chunks))) break; // a server may keep the socket open to drain input
    }
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }
  const all = concat(chunks);
  const sep = all.findIndex((_, i) =>
    all[i] === 13 && all[i + 1] === 10 && all[i + 2] === 13 && all[i + 3] === 10
  );
  if (all.length === 0 || sep < 0) return { status: 0, headers: new Map(), body: "" };
  const lines = new TextDecoder().decode(all.subarray(0, sep)).split("\r\n");
  const status = Number(lines[0].split(" ")[1] ?? 0);
  const headers = new Map<string, string>();
  for (const l of lines.slice(1)) {
    const c = l.indexOf(":");
    if (c > 0) headers.set(l.slice(0, c).trim().toLowerCase(), l.slice(c + 1).trim());
  }
  let raw = all.subarray(sep + 4);
  if (headers.get("transfer-encoding")?.includes("chunked")) raw = dechunk(raw);
  return { status, headers, body: new TextDecoder().decode(raw) };
}
