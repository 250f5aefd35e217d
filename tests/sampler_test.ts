import assert from "node:assert/strict";
import { argmax, Rng, Sampler, SamplerError } from "../lib/generate/sampler.ts";

/** Seeded random logits [n] in [-5, 5). */
function randomLogits(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.next() * 10 - 5;
  return out;
}

Deno.test("sampler: temperature 0 is argmax", () => {
  const rng = new Rng(7);
  const s = new Sampler({ temperature: 0, seed: 3 });
  for (let t = 0; t < 50; t++) {
    const logits = randomLogits(rng, 1000);
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    assert.equal(s.sample(logits), best);
  }
});

Deno.test("sampler: top-k 1 equals greedy even at high temperature", () => {
  const rng = new Rng(8);
  const s = new Sampler({ temperature: 5, topK: 1, seed: 11 });
  for (let t = 0; t < 50; t++) {
    const logits = randomLogits(rng, 500);
    assert.equal(s.sample(logits), argmax(logits));
  }
});

Deno.test("sampler: same seed gives the same sequence, another seed differs", () => {
  const logits = randomLogits(new Rng(1), 64);
  const run = (seed: number) => {
    const s = new Sampler({ temperature: 1.5, topK: 40, topP: 0.95, seed });
    return Array.from({ length: 200 }, () => s.sample(logits));
  };
  assert.deepEqual(run(42), run(42));
  assert.notDeepEqual(run(42), run(43));
});

Deno.test("sampler: empirical frequencies of 20k draws match softmax within 2%", () => {
  const logits = new Float32Array([1.0, 0.5, 0.0, -0.5, 2.0]);
  for (const temperature of [1, 0.7]) {
    const s = new Sampler({ temperature, seed: 2024 });
    const counts = new Array(5).fill(0);
    const n = 20000;
    for (let i = 0; i < n; i++) counts[s.sample(logits)]++;
    const exps = Array.from(logits, (v) => Math.exp(v / temperature));
    const z = exps.reduce((a, b) => a + b, 0);
    for (let i = 0; i < 5; i++) {
      const want = exps[i] / z;
      const got = counts[i] / n;
      assert.ok(Math.abs(got - want) < 0.02, `T=${temperature} token ${i}: ${got} vs ${want}`);
    }
  }
});

Deno.test("sampler: top-p keeps the smallest nucleus and excludes the tail", () => {
  const probs = [0.5, 0.3, 0.1, 0.06, 0.04];
  const logits = new Float32Array(probs.map(Math.log));
  const s = new Sampler({ temperature: 1, topP: 0.85, seed: 5 });
  const f = s.filteredProbabilities(logits);
  assert.equal(f[3], 0);
  assert.equal(f[4], 0);
  assert.ok(Math.abs(f[0] - 0.5 / 0.9) < 1e-5, `renormalised: ${f[0]}`);
  assert.ok(Math.abs(f[2] - 0.1 / 0.9) < 1e-5);
  const seen = new Set<number>();
  for (let i = 0; i < 5000; i++) seen.add(s.sample(logits));
  assert.deepEqual([...seen].sort(), [0, 1, 2]);
  // A tiny p still keeps one token: the most likely one.
  const tiny = new Sampler({ temperature: 1, topP: 1e-6, seed: 5 });
  for (let i = 0; i < 100; i++) assert.equal(tiny.sample(logits), 0);
});

Deno.test("sampler: top-k applies before top-p and renormalises", () => {
  const logits = new Float32Array([0.4, 0.3, 0.2, 0.1].map(Math.log));
  const s = new Sampler({ temperature: 1, topK: 2, topP: 0.5, seed: 1 });
  const f = s.filteredProbabilities(logits);
  // top-2 renormalised: 4/7, 3/7; p = 0.5 is reached by the first alone.
  assert.deepEqual(Array.from(f, (x) => x > 0), [true, false, false, false]);
  const s2 = new Sampler({ temperature: 1, topK: 2, topP: 0.9, seed: 1 });
  const f2 = s2.filteredProbabilities(logits);
  assert.ok(Math.abs(f2[0] - 4 / 7) < 1e-5 && Math.abs(f2[1] - 3 / 7) < 1e-5);
  assert.equal(f2[2] + f2[3], 0);
});

Deno.test("sampler: -Infinity and NaN logits never win and never make NaN", () => {
  const logits = new Float32Array([-Infinity, 0, -Infinity, 1, NaN, -Infinity]);
  const s = new Sampler({ temperature: 0.8, topP: 0.99, seed: 9 });
  const p = s.probabilities(logits);
  assert.ok(p.every((x) => Number.isFinite(x)), `probabilities: ${p}`);
  for (let i = 0; i < 2000; i++) {
    const id = s.sample(logits);
    assert.ok(id === 1 || id === 3, `picked ${id}`);
  }
  assert.equal(new Sampler({ temperature: 0 }).sample(logits), 3);
  const dead = new Float32Array([-Infinity, NaN, -Infinity]);
  assert.throws(() => new Sampler({ temperature: 1 }).sample(dead), SamplerError);
  assert.throws(() => new Sampler({ temperature: 0 }).sample(dead), SamplerError);
});

Deno.test("sampler: invalid options are rejected", () => {
  assert.throws(() => new Sampler({ temperature: -1 }), SamplerError);
  assert.throws(() => new Sampler({ temperature: NaN }), SamplerError);
  assert.throws(() => new Sampler({ topP: 0 }), SamplerError);
  assert.throws(() => new Sampler({ topP: 1.5 }), SamplerError);
  assert.throws(() => new Sampler({ topK: 2.5 }), SamplerError);
});

Deno.test("rng: deterministic, in [0, 1), roughly uniform", () => {
  const a = new Rng(123);
  const b = new Rng(123);
  let sum = 0;
  for (let i = 0; i < 10000; i++) {
    const x = a.next();
    assert.equal(x, b.next());
    assert.ok(x >= 0 && x < 1);
    sum += x;
  }
  assert.ok(Math.abs(sum / 10000 - 0.5) < 0.02);
  assert.notEqual(new Rng(0).next(), new Rng(1).next());
});
