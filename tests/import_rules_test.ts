/**
 * The import rules of the layering (docs/design.md, Layering), checked on the module graph
 * that Deno itself resolves (`deno info --json`, static and dynamic imports, type-only ones
 * included) for every TypeScript file of the repository:
 *
 * - layers: backends ← model ← masks ← {generate, server, calibrate, eval}; a lower room never
 *   imports a higher one, and none of generate, calibrate, eval or export imports the server;
 * - the runtime path (everything main.ts, tools/serve.ts and deploy/deno_deploy.ts load)
 *   never loads lib/calibrate, lib/eval, lib/export or tools/;
 * - lib/server is imported only by lib/server itself, those entry points, and the tests
 *   and benchmarks of the server named in {@link SERVER_CLIENTS}.
 */

import assert from "node:assert/strict";
import { relative } from "node:path";
import { fileURLToPath as fromFileUrl, pathToFileURL } from "node:url";

const ROOT = fromFileUrl(new URL("..", import.meta.url)).replace(/\/$/, "");

/** Files outside lib/server, main.ts and tools/serve.ts that may import lib/server, and why. */
const SERVER_CLIENTS: Record<string, string> = {
  "tests/golden_answers_test.ts": "the server's answers are part of the golden behaviour",
  "tests/router_ood_test.ts": "routes out-of-distribution prompts through the served app",
  "tests/q8_format_test.ts": "SEAP_WEIGHTS parsing of the server's settings",
  "bench/load_test.ts": "the server's load benchmark",
  "bench/scale_bench.ts": "sizes models with the server's memory fit (lib/server/memory_fit.ts)",
};

/** Rooms of lib/ whose imports are ruled, and the rooms each may not import. */
const FORBIDDEN: Record<string, string[]> = {
  backends: ["model", "masks", "generate", "server", "calibrate", "eval", "export"],
  model: ["masks", "generate", "server", "calibrate", "eval", "export"],
  masks: ["generate", "server", "calibrate", "eval", "export"],
  generate: ["server", "calibrate", "eval"],
  calibrate: ["server"],
  eval: ["server"],
  export: ["server"],
};

/** Roots of the runtime path, and what it may never load. */
const RUNTIME_ROOTS = ["main.ts", "tools/serve.ts", "deploy/deno_deploy.ts"];
const NOT_AT_RUNTIME = [
  /^lib\/calibrate\//,
  /^lib\/eval\//,
  /^lib\/export\//,
  /^tools\/(?!serve\.ts$)/,
];

/** One import: `from` loads `to` (repository-relative paths). */
type Edge = [from: string, to: string];

/** Every .ts file of the repository outside node_modules and fixtures, relative to ROOT. */
function sources(dir = ROOT): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) {
      if (["node_modules", "fixtures", ".git", "node_peers"].includes(e.name)) continue;
      if (e.name.startsWith(".")) continue;
      out.push(...sources(path));
    } else if (e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) {
      out.push(relative(ROOT, path));
    }
  }
  return out.sort();
}

/** The import edges between repository files, as `deno info --json` resolves them. */
async function importGraph(files: string[]): Promise<Edge[]> {
  const dir = await Deno.makeTempDir({ prefix: "seap_imports_" });
  try {
    const root = `${dir}/all.ts`;
    await Deno.writeTextFile(
      root,
      files.map((f) => `import "${pathToFileURL(`${ROOT}/${f}`).href}";\n`).join(""),
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", "--config", `${ROOT}/deno.json`, root],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      modules: {
        specifier: string;
        dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
      }[];
    };
    const rel = (spec: string) =>
      spec.startsWith("file://") ? relative(ROOT, fromFileUrl(spec)) : null;
    const edges: Edge[] = [];
    for (const m of info.modules) {
      const from = rel(m.specifier);
      if (!from || from.startsWith("..")) continue;
      for (const d of m.dependencies ?? []) {
        for (const s of [d.code?.specifier, d.type?.specifier]) {
          const to = s ? rel(s) : null;
          if (to && !to.startsWith("..")) edges.push([from, to]);
        }
      }
    }
    return edges;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Violations of the layer rules and of the server's client list. */
function ruleViolations(edges: Edge[]): string[] {
  const bad: string[] = [];
  const room = (p: string) => /^lib\/([^/]+)\//.exec(p)?.[1] ?? null;
  for (const [from, to] of edges) {
    const a = room(from);
    const b = room(to);
    if (a && b && a !== b && FORBIDDEN[a]?.includes(b)) {
      bad.push(`${from} imports ${to}: lib/${a} may not import lib/${b}`);
    }
    if (b === "server" && a !== "server" && !RUNTIME_ROOTS.includes(from)) {
      const serverTest = /^tests\/server_[a-z_]+\.ts$/.test(from);
      if (!serverTest && !(from in SERVER_CLIENTS)) {
        bad.push(`${from} imports ${to}: only the server, main.ts and its tests use lib/server`);
      }
    }
  }
  return bad;
}

/** Files the runtime path loads that it must not. */
function runtimeViolations(edges: Edge[]): string[] {
  const next = new Map<string, string[]>();
  for (const [a, b] of edges) next.set(a, [...(next.get(a) ?? []), b]);
  const seen = new Set<string>();
  const bad: string[] = [];
  const walk = (f: string, via: string[]) => {
    if (seen.has(f)) return;
    seen.add(f);
    if (NOT_AT_RUNTIME.some((re) => re.test(f))) bad.push([...via, f].join(" → "));
    for (const g of next.get(f) ?? []) walk(g, [...via, f]);
  };
  for (const r of RUNTIME_ROOTS) walk(r, []);
  return bad;
}

Deno.test("import rules: layering, runtime path and the server's clients", async () => {
  const files = sources();
  const edges = await importGraph(files);
  // The graph is real: it holds the imports we know are there.
  const has = (a: string, b: string) => edges.some(([x, y]) => x === a && y === b);
  assert.ok(has("main.ts", "lib/server/app.ts"), "main.ts → lib/server/app.ts missing");
  assert.ok(has("lib/server/engine_handle.ts", "lib/masks/mask_io.ts"));
  assert.ok(has("lib/calibrate/pipeline.ts", "lib/masks/mask_io.ts"));
  assert.ok(edges.length > 500, `only ${edges.length} imports found`);
  const bad = [...ruleViolations(edges), ...runtimeViolations(edges)];
  assert.deepEqual(bad, [], `import rules broken:\n${bad.join("\n")}`);
});

Deno.test("import rules: the checks catch a violation of each rule", () => {
  assert.deepEqual(ruleViolations([["lib/model/sequence.ts", "lib/masks/router.ts"]]), [
    "lib/model/sequence.ts imports lib/masks/router.ts: lib/model may not import lib/masks",
  ]);
  assert.equal(ruleViolations([["lib/masks/catalog.ts", "lib/server/errors.ts"]]).length, 2);
  assert.equal(ruleViolations([["tools/eval.ts", "lib/server/engine_handle.ts"]]).length, 1);
  assert.equal(ruleViolations([["tests/server_unit_test.ts", "lib/server/app.ts"]]).length, 0);
  assert.deepEqual(
    runtimeViolations([
      ["main.ts", "lib/server/engine_handle.ts"],
      ["lib/server/engine_handle.ts", "lib/calibrate/mask_io.ts"],
    ]),
    ["main.ts → lib/server/engine_handle.ts → lib/calibrate/mask_io.ts"],
  );
});
