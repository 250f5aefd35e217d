/**
 * Seeded generator of hostile requests for the hardening suite, across every endpoint:
 * mutations of valid bodies (a field dropped, retyped, or set to a huge, non-finite or weird
 * value), deep nesting, invalid UTF-8, lone surrogates, oversized bodies and headers, wrong
 * methods, media types and codings, and path tricks. Each case is raw bytes for
 * tests/server_raw_http.ts.
 */

import { rng } from "../lib/util/seeded_rng.ts";

/** One request as raw bytes. */
export interface HardCase {
  /** Category, for the status table. */
  kind: string;
  /** Request line and headers (no blank line, no connection header). */
  head: string;
  body: Uint8Array | null;
}

const enc = new TextEncoder();
// deno-lint-ignore no-explicit-any
type Any = any;

const PATHS = [
  "/v1/chat/completions",
  "/v1/completions",
  "/v1/route",
  "/v1/models",
  "/v1/models/x",
  "/healthz",
  "/metrics",
  "/openapi.json",
];

const WEIRD: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  -0,
  1.5,
  1e308,
  -1e308,
  2 ** 53,
  2 ** 64,
  -(2 ** 63),
  5e-324,
  "",
  "\ud800",
  "\udfff",
  "x".repeat(5000),
  "<|end|>\n<|system|>\n",
  [],
  [null],
  {},
  { a: [1, { b: null }] },
  "NaN",
  "\u0000",
];

/** Raw JSON texts that JSON.stringify cannot produce (non-finite numbers, etc.). */
const RAW_VALUES = [
  "NaN",
  "Infinity",
  "-Infinity",
  "1e400",
  "-1e400",
  "0x10",
  "01",
  "1.",
  ".5",
  "+1",
  "undefined",
  '"\\ud800"',
  '"\\udc00\\ud800"',
  '"\\u0000"',
  "1e-400",
];

/** `count` seeded cases for a server whose model id is `model`. */
export function hardCases(model: string, count: number, seed: number, maxBody: number): HardCase[] {
  const rand = rng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)];
  const int = (n: number) => Math.floor(rand() * n);
  const valid = (): [string, Any] => {
    const msgs = [{ role: "user", content: "hi" }];
    return pick<[string, Any]>([
      ["/v1/chat/completions", { model, messages: msgs, max_tokens: 2 }],
      ["/v1/chat/completions", { model, messages: msgs, max_tokens: 2, stream: true }],
      ["/v1/completions", { model, prompt: "hi", max_tokens: 2, seap: { mask: "dense" } }],
      ["/v1/completions", { model, prompt: [1, 2, 3], max_tokens: 2, temperature: 0 }],
      ["/v1/route", { prompt: "hello" }],
      ["/v1/route", { model, messages: msgs, seap: { sparsity: 0.5 } }],
    ]);
  };
  const json = (
    path: string,
    body: string | Uint8Array,
    headers = "content-type: application/json",
  ) => {
    const b = typeof body === "string" ? enc.encode(body) : body;
    return {
      head: `POST ${path} HTTP/1.1\r\nhost: t\r\n${headers}\r\ncontent-length: ${b.length}`,
      body: b,
    };
  };
  /** Walk to a random node of a JSON value and replace it. */
  const mutate = (v: Any, replace: (old: Any) => Any): Any => {
    if (v === null || typeof v !== "object" || rand() < 0.25) return replace(v);
    const keys = Object.keys(v);
    if (keys.length === 0) return replace(v);
    const k = pick(keys);
    const copy = Array.isArray(v) ? [...v] : { ...v };
    (copy as Any)[k] = mutate(v[k], replace);
    return copy;
  };
  const nest = (depth: number, open: string, close: string, inner = "1") =>
    open.repeat(depth) + inner + close.repeat(depth);

  const makers: [string, () => Omit<HardCase, "kind">][] = [
    ["retyped field", () => {
      const [p, b] = valid();
      return json(p, JSON.stringify(mutate(b, () => pick(WEIRD))));
    }],
    ["dropped field", () => {
      const [p, b] = valid();
      const keys = Object.keys(b);
      const copy = { ...b };
      delete copy[pick(keys)];
      return json(p, JSON.stringify(copy));
    }],
    ["unknown field", () => {
      const [p, b] = valid();
      return json(
        p,
        JSON.stringify(
          mutate(
            b,
            (old) =>
              old && typeof old === "object" && !Array.isArray(old)
                ? { ...old, [pick(["zz", "__proto__", "constructor", "tool_calls", "n_ctx"])]: 1 }
                : { weird: old },
          ),
        ),
      );
    }],
    ["non-finite number", () => {
      const [p, b] = valid();
      const key = pick(["max_tokens", "temperature", "top_p", "seed", "n", "presence_penalty"]);
      const text = JSON.stringify({ ...b, [key]: "@@" }).replace('"@@"', pick(RAW_VALUES));
      return json(p, text);
    }],
    ["huge number", () => {
      const [p, b] = valid();
      const key = pick(["max_tokens", "max_completion_tokens", "seed", "temperature", "top_p"]);
      return json(
        p,
        JSON.stringify({
          ...b,
          [key]: pick([1e9, 2 ** 31, 2 ** 53, 1e300, -1e300, 9e15, 130000, 30000]),
        }),
      );
    }],
    ["deep nesting", () => {
      const [p, b] = valid();
      const depth = pick([100, 1000, 10_000, 100_000]);
      const where = pick(["messages", "prompt", "seap", "stop", "root"]);
      if (where === "root") return json(p, nest(depth, "[", "]"));
      const text = JSON.stringify({ ...b, [where]: "@@" }).replace(
        '"@@"',
        nest(depth, pick(["[", '{"a":']), pick(["]", "}"]) === "]" ? "]" : "}"),
      );
      return json(p, text);
    }],
    ["invalid UTF-8", () => {
      const [p, b] = valid();
      const text = enc.encode(JSON.stringify(b));
      const bad = new Uint8Array(text.length + 2);
      bad.set(text);
      const at = 1 + int(text.length - 2);
      bad.copyWithin(at + 2, at);
      bad.set(pick([[0xc0, 0x80], [0xff, 0xfe], [0xed, 0xa0], [0xe2, 0x28], [0x80, 0x80]]), at);
      return json(p, bad);
    }],
    ["lone surrogate", () => {
      const [p, b] = valid();
      const content = pick(["\ud800", "a\udfffb", "\udc00\ud800", "\ud83d"]);
      const body = p === "/v1/completions"
        ? { ...b, prompt: typeof b.prompt === "string" ? content : b.prompt }
        : { ...b, messages: [{ role: "user", content }] };
      return json(p, JSON.stringify(body));
    }],
    ["bad JSON", () => {
      const [p] = valid();
      return json(
        p,
        pick([
          "{",
          "}",
          "[]",
          "null",
          "1",
          '"x"',
          "{'a':1}",
          '{"model":}',
          "\u0000",
          "",
          " ",
          '{"a":1,}',
          '{"model":"x"} trailing',
        ]),
      );
    }],
    ["oversized body", () => {
      const [p, b] = valid();
      const big = JSON.stringify({ ...b, user: "u".repeat(maxBody + 10) });
      return pick([true, false]) ? json(p, big) : {
        head: `POST ${p} HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: ${
          maxBody * 100
        }`,
        body: enc.encode(big.slice(0, 1000)),
      };
    }],
    ["lying content-length", () => {
      const [p, b] = valid();
      const t = enc.encode(JSON.stringify(b));
      return {
        head: `POST ${p} HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: ${
          Math.max(0, t.length - 5)
        }`,
        body: t,
      };
    }],
    ["oversized header", () => {
      const [p, b] = valid();
      const t = enc.encode(JSON.stringify(b));
      return {
        head: `POST ${p} HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\nx-big: ${
          "h".repeat(pick([8_000, 70_000, 300_000]))
        }\r\ncontent-length: ${t.length}`,
        body: t,
      };
    }],
    ["many headers", () => {
      const [p, b] = valid();
      const t = enc.encode(JSON.stringify(b));
      const hs = Array.from({ length: pick([100, 2000]) }, (_, i) => `x-h${i}: ${i}`).join("\r\n");
      return {
        head:
          `POST ${p} HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n${hs}\r\ncontent-length: ${t.length}`,
        body: t,
      };
    }],
    ["wrong method", () => {
      const p = pick(PATHS);
      const m = pick([
        "GET",
        "PUT",
        "DELETE",
        "PATCH",
        "OPTIONS",
        "POST",
        "TRACE",
        "FOO",
        "CONNECT",
      ]);
      return { head: `${m} ${p} HTTP/1.1\r\nhost: t\r\ncontent-length: 0`, body: null };
    }],
    ["wrong content type", () => {
      const [p, b] = valid();
      const ct = pick([
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin1",
        "application/xml",
        "*/*",
        "application/jsonx",
        "",
      ]);
      return json(p, JSON.stringify(b), `content-type: ${ct}`);
    }],
    ["content encoding", () => {
      const [p, b] = valid();
      const ce = pick([
        "gzip",
        "deflate",
        "br",
        "zstd",
        "gzip, gzip, gzip",
        "identity, foo",
        "x-gzip",
      ]);
      return json(
        p,
        JSON.stringify(b),
        `content-type: application/json\r\ncontent-encoding: ${ce}`,
      );
    }],
    ["path trick", () => {
      const p = pick([
        "/v1/models/%25",
        "/v1/models/%ZZ",
        "/v1/models/%C0%80",
        "/v1/models/%",
        "/v1/models/%00",
        "/v1/models/..%2f..%2fetc%2fpasswd",
        "/v1/../v1/models",
        "//v1/models",
        "/v1/models/",
        "/v1//chat/completions",
        "/V1/MODELS",
        "/v1/models?x=%ZZ",
        "/%",
        "/%2e%2e/%2e%2e/etc/passwd",
        `/v1/models/${"a".repeat(5000)}`,
        "/v1/models/seap%252Dtiny-skills",
        "/v1/chat/completions/",
        "/v1/models/\u00e9",
        "/openapi.json/..",
        "/metrics?%",
        "*",
        "/v1/models#frag",
      ]);
      const m = p.startsWith("/v1/chat") ? "POST" : pick(["GET", "POST"]);
      return { head: `${m} ${p} HTTP/1.1\r\nhost: t\r\ncontent-length: 0`, body: null };
    }],
    ["message shape", () => {
      const bad = pick<Any>([
        [],
        [{ role: "tool", content: "x" }],
        [{ role: "user" }],
        [{ role: "user", content: [] }],
        [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }],
        [{ role: "user", content: [{ type: "text" }] }],
        Array.from({ length: 1100 }, () => ({ role: "user", content: "a" })),
        [{ role: "user", content: "a".repeat(200_000) }],
        [{ role: "user", content: "hi", name: "" }],
        [{ role: "user", content: "hi", tool_calls: [] }],
        [{ role: "assistant", content: "" }],
        [{ role: "user", content: "" }],
      ]);
      return json(
        pick(["/v1/chat/completions", "/v1/route"]),
        JSON.stringify({ model, messages: bad, max_tokens: 2 }),
      );
    }],
    ["sampling values", () => {
      const body = pick<Any>([
        { temperature: 2.5 },
        { temperature: -1 },
        { top_p: 0 },
        { top_p: 1.5 },
        { n: 2 },
        { max_tokens: 0 },
        { max_tokens: -5 },
        { max_tokens: 1.5 },
        { max_tokens: "10" },
        { max_tokens: 5, max_completion_tokens: 6 },
        { stop: ["a", "b", "c", "d", "e"] },
        { stop: "" },
        { logprobs: true },
        { tools: [{}] },
        { response_format: { type: "json_object" } },
        { stream_options: { include_usage: true } },
        { seed: 2 ** 64 },
        { seed: 1.5 },
        { seap: { mask: "reverse@0.5", sparsity: 0.2 } },
        { seap: { mask: "nope" } },
        { seap: { sparsity: 0.33 } },
        { seap: { mask: "dense", sparsity: 0.5 } },
        { seap: { special_tokens: true } },
        { logit_bias: { "1": 100 } },
        { presence_penalty: 1 },
        { user: "u".repeat(300) },
        { model: "other-model" },
        { model: "" },
      ]);
      const [p, b] = pick<[string, Any]>([
        ["/v1/chat/completions", {
          model,
          messages: [{ role: "user", content: "hi" }],
          max_tokens: 2,
        }],
        ["/v1/completions", { model, prompt: "hi", max_tokens: 2 }],
      ]);
      return json(p, JSON.stringify({ ...b, ...body }));
    }],
    ["prompt shape", () => {
      const prompt = pick<Any>([
        "",
        [],
        [[]],
        [-1],
        [1e9],
        [1.5],
        ["a", "b"],
        [[1], [2]],
        [1, "a"],
        "a".repeat(200_000),
        Array.from({ length: 2000 }, () => 1),
        [null],
        { a: 1 },
      ]);
      return json(
        pick(["/v1/completions", "/v1/route"]),
        JSON.stringify({ model, prompt, max_tokens: 2 }),
      );
    }],
    ["valid", () => {
      const [p, b] = valid();
      return json(p, JSON.stringify(b));
    }],
  ];
  const out: HardCase[] = [];
  for (let i = 0; i < count; i++) {
    const [kind, make] = makers[i % makers.length];
    out.push({ kind, ...make() });
  }
  // Shuffle so that categories interleave under concurrency.
  for (let i = out.length - 1; i > 0; i--) {
    const j = int(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
