/**
 * Deploy targets, checked statically (no cluster and no container engine here): every
 * Kubernetes manifest validates against the Kubernetes schemas (npm kubernetes-models), the
 * manifests and Dockerfiles start the server with exactly the narrow permissions, the HPA
 * scales on gauges the server really exports, and the Deno Deploy entry's memory-fit check
 * agrees with the weights on disk and refuses a model that cannot fit.
 */

import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { Service } from "kubernetes-models/v1/Service";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import { checkDeployFit } from "../deploy/deno_deploy.ts";
import { DEFAULT_MODEL_DIR } from "../lib/default_model.ts";
import { readConfig } from "../lib/model/model.ts";
import { DEFAULT_CONFIG } from "../lib/server/config.ts";
import { checkMemoryFit, estimateFootprint } from "../lib/server/memory_fit.ts";
import { ServerMetrics } from "../lib/server/metrics.ts";
import { Scheduler } from "../lib/server/scheduler.ts";
import { servePermissionFlags } from "../lib/server/permissions.ts";
import { SERVE_V8_FLAGS } from "../lib/server/runtime_flags.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

const DEPLOY = new URL("../deploy/", import.meta.url).pathname;
const MANIFESTS = ["k8s.yaml", "k8s-gpu.yaml", "k8s-metrics.yaml"];
// deno-lint-ignore no-explicit-any
const KINDS: Record<string, new (o: any) => { validate(): void }> = {
  "apps/v1/Deployment": Deployment,
  "v1/Service": Service,
  "v1/ConfigMap": ConfigMap,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
};

async function manifests(): Promise<{ file: string; doc: Any }[]> {
  const out = [];
  for (const file of MANIFESTS) {
    for (const d of parseAllDocuments(await Deno.readTextFile(DEPLOY + file))) {
      assert.deepEqual(d.errors, [], `${file}: YAML errors`);
      out.push({ file, doc: d.toJS() });
    }
  }
  return out;
}

/** How every container starts the server, before its V8 flags (lib/server/runtime_flags.ts). */
const SERVE_START = ["deno", "run", "--unstable-no-legacy-abort"];

/** The permission flags the container image layout (/app) must use. */
const CONTAINER_FLAGS = servePermissionFlags({
  modelDir: "/app/models",
  masksDir: "/app/masks",
  host: "0.0.0.0",
  port: 8000,
}).map((f) => f.replace(/--allow-read=[^ ]*/, "--allow-read=/app/kernels,/app/models,/app/masks"));

Deno.test("deploy: every Kubernetes manifest validates against the Kubernetes schemas", async () => {
  // The validator is real: a wrong type is refused.
  assert.throws(() =>
    new Deployment({
      metadata: { name: "x" },
      spec: { replicas: "two", selector: {}, template: {} },
    } as Any).validate()
  );
  const docs = await manifests();
  const seen = new Set<string>();
  for (const { file, doc } of docs) {
    const key = `${doc.apiVersion}/${doc.kind}`;
    const Kind = KINDS[key];
    assert.ok(Kind, `${file}: no schema for ${key}`);
    new Kind(doc).validate(); // throws with the schema error
    seen.add(`${file}:${doc.kind}`);
  }
  for (const k of ["Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"]) {
    assert.ok(seen.has(`k8s.yaml:${k}`), `k8s.yaml has a ${k}`);
  }
  assert.ok(seen.has("k8s-gpu.yaml:Deployment"));
});

Deno.test("deploy: manifests use the narrow permissions, a PDB over the pods, a GPU, and HPA load metrics", async () => {
  const docs = (await manifests()).map((d) => d.doc);
  const deployments = docs.filter((d) => d.kind === "Deployment");
  for (const dep of deployments) {
    const c = dep.spec.template.spec.containers[0];
    assert.deepEqual(c.command.slice(0, 4), [...SERVE_START, ...SERVE_V8_FLAGS]);
    assert.deepEqual(c.command.slice(4, -1), CONTAINER_FLAGS, dep.metadata.name);
    assert.ok(c.resources.requests.memory && c.resources.limits.memory);
    assert.equal(dep.spec.template.spec.securityContext.runAsNonRoot, true);
    const pdb = docs.find((d) =>
      d.kind === "PodDisruptionBudget" &&
      Object.entries(d.spec.selector.matchLabels).every(([k, v]) =>
        dep.spec.template.metadata.labels[k] === v
      )
    );
    assert.ok(pdb, `a PodDisruptionBudget selects ${dep.metadata.name}`);
  }
  const gpu = deployments.find((d) => d.metadata.name === "seap-server-gpu")!;
  assert.equal(gpu.spec.template.spec.containers[0].resources.limits["nvidia.com/gpu"], "1");
  // The HPA's pod metrics are gauges the server exports on /metrics.
  const metrics = new ServerMetrics();
  new Scheduler({ maxConcurrent: 1, queueSize: 1, timeoutMs: 0 }, metrics);
  const exported = metrics.render();
  const hpa = docs.find((d) => d.kind === "HorizontalPodAutoscaler");
  const podMetrics = hpa.spec.metrics.filter((m: Any) => m.type === "Pods")
    .map((m: Any) => m.pods.metric.name);
  assert.ok(podMetrics.length >= 1, "scales on a load metric, not only CPU");
  for (const m of podMetrics) assert.match(exported, new RegExp(`^# TYPE ${m} gauge`, "m"));
  const rules = docs.find((d) => d.kind === "ConfigMap").data["config.yaml"];
  for (const m of podMetrics) assert.ok(rules.includes(m), `adapter rule for ${m}`);
  // The memory request covers the model's estimated footprint at the configured concurrency.
  const { config } = await readConfig(DEFAULT_MODEL_DIR);
  const cpu = deployments.find((d) => d.metadata.name === "seap-server")!;
  const env = Object.fromEntries(
    cpu.spec.template.spec.containers[0].env.map((e: Any) => [e.name, e.value]),
  );
  const fp = estimateFootprint(config, {
    weights: "f32",
    maxConcurrent: Number(env.SEAP_MAX_CONCURRENT),
    context: config.maxPositionEmbeddings,
  });
  const req = cpu.spec.template.spec.containers[0].resources.requests.memory as string;
  assert.ok(Number(req.replace("Mi", "")) * 2 ** 20 >= fp.total, `${req} < ${fp.total} bytes`);
});

Deno.test("deploy: Dockerfiles run non-root with the narrow permissions and a health check", async () => {
  for (const file of ["Dockerfile", "Dockerfile.gpu"]) {
    const text = (await Deno.readTextFile(DEPLOY + file)).replace(/\\\n\s*/g, "");
    const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(text)![1]);
    assert.deepEqual(cmd.slice(0, 4), [...SERVE_START, ...SERVE_V8_FLAGS], file);
    assert.deepEqual(cmd.slice(4, -1), CONTAINER_FLAGS, file);
    assert.match(text, /^USER 10001$/m);
    assert.match(text, /^HEALTHCHECK .*\/healthz/m);
    assert.doesNotMatch(text, /--allow-all|\s-A\s/);
  }
  const gpu = await Deno.readTextFile(DEPLOY + "Dockerfile.gpu");
  assert.match(gpu, /libvulkan1/);
  assert.match(gpu, /NVIDIA_DRIVER_CAPABILITIES=compute,graphics/);
  assert.match(gpu, /SEAP_BACKEND=webgpu/);
});

Deno.test("deploy: the memory-fit estimate matches the weights on disk; a 1B model does not fit 512 MiB", async () => {
  const { config } = await readConfig(DEFAULT_MODEL_DIR);
  const fp = estimateFootprint(config, { weights: "f32", maxConcurrent: 1, context: 1 });
  const file = (await Deno.stat(`${DEFAULT_MODEL_DIR}/model.safetensors`)).size;
  const err = Math.abs(fp.weights - file) / file;
  assert.ok(
    err < 0.02,
    `estimate ${fp.weights} vs file ${file} bytes (${(err * 100).toFixed(2)}%)`,
  );
  assert.match(await checkDeployFit({ ...DEFAULT_CONFIG }, 512), /of 512\.0 MiB/);

  // A Llama-3.2-1B-shaped folder (config only): refused with the reason.
  const dir = await Deno.makeTempDir({ prefix: "seap_1b_" });
  try {
    await Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify({
        architectures: ["LlamaForCausalLM"],
        model_type: "llama",
        hidden_size: 2048,
        intermediate_size: 8192,
        num_hidden_layers: 16,
        num_attention_heads: 32,
        num_key_value_heads: 8,
        max_position_embeddings: 131072,
        vocab_size: 128256,
        tie_word_embeddings: true,
        rms_norm_eps: 1e-5,
        rope_theta: 500000,
      }),
    );
    await assert.rejects(
      () => checkDeployFit({ ...DEFAULT_CONFIG, modelDir: dir, weights: "f16" }, 512),
      /does not fit: it needs about \d+\.\d MiB \(weights 2357\.\d MiB.*allows 512\.0 MiB/,
    );
    const one = estimateFootprint({ ...config, ...{} }, {
      weights: "f16",
      maxConcurrent: 1,
      context: 512,
    });
    assert.ok(checkMemoryFit(one, 512 * 2 ** 20, "x").fits);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
