// Quantize activations for q8 matmuls, per token and block of 32 (lib/formats/q8.ts):
//   d = max|x| / 127,  id = d == 0 ? 0 : 1 / d,  q = round(x * id)  (ties to even, |q| <= 127).
// x [T, K] f32 (K % 32 == 0) -> xq: T * K/32 scales (f32 bits) from word 0, then the int8
// values packed four per u32 (little-endian) from word q_base. One thread per (token, block).

//!include grid

//!include uniforms
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> xq: array<u32>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let nb = u.K / 32u;
  let i = workgroup_index(wid, nwg) * 64u + lid; // block index over [T, nb]
  if (i >= u.T * nb) {
    return;
  }
  let e0 = i * 32u; // = t * K + b * 32
  var amax = 0.0;
  for (var k = 0u; k < 32u; k++) {
    amax = max(amax, abs(x[e0 + k]));
  }
  let d = amax / 127.0;
  var id = 0.0;
  if (d != 0.0) {
    id = 1.0 / d;
  }
  xq[i] = bitcast<u32>(d);
  for (var j = 0u; j < 8u; j++) {
    var word = 0u;
    for (var k = 0u; k < 4u; k++) {
      let q = i32(round(x[e0 + 4u * j + k] * id));
      word = word | ((bitcast<u32>(q) & 0xffu) << (8u * k));
    }
    xq[u.q_base + i * 8u + j] = word;
  }
}
