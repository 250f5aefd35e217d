/**
 * /openapi.json is a valid OpenAPI 3.0.3 document by a standard validator
 * (`@apidevtools/swagger-parser`), and every example request in it is accepted by the server
 * it describes.
 */

import assert from "node:assert/strict";
import SwaggerParser from "@apidevtools/swagger-parser";
import { post, tinyApp } from "./server_helpers.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

Deno.test("openapi: the served document passes swagger-parser's OpenAPI 3.0 validation", async () => {
  const { app } = await tinyApp();
  const r = await app.request("/openapi.json");
  assert.equal(r.status, 200);
  const doc = await r.json();
  assert.equal(doc.openapi, "3.0.3");
  // validate() throws with every schema error listed when the document is invalid.
  const api = await SwaggerParser.validate(structuredClone(doc)) as Any;
  assert.ok(api.paths["/v1/chat/completions"].post);
  for (const path of ["/v1/chat/completions", "/v1/completions", "/v1/route", "/v1/models"]) {
    assert.ok(doc.paths[path], `${path} documented`);
  }
});

Deno.test("openapi: every example request is accepted by the server", async () => {
  const { app } = await tinyApp();
  const doc = await (await app.request("/openapi.json")).json();
  let sent = 0;
  for (const [path, ops] of Object.entries(doc.paths as Record<string, Any>)) {
    for (const [method, op] of Object.entries(ops as Record<string, Any>)) {
      const examples = op.requestBody?.content?.["application/json"]?.examples ?? {};
      for (const [name, ex] of Object.entries(examples as Record<string, Any>)) {
        assert.equal(method, "post");
        const res = await post(app, path, ex.value);
        const text = await res.text();
        assert.equal(res.status, 200, `${path} example '${name}': ${text.slice(0, 300)}`);
        if (ex.value.stream) assert.match(text, /data: \[DONE\]/, `${name} stream completes`);
        sent++;
      }
    }
  }
  assert.ok(sent >= 6, `only ${sent} examples`);
});
