// Row-gathered product on q8 weights (lib/formats/q8.ts: 36-byte blocks = 9 words, word 0 the
// f32 scale, words 1..8 the 32 int8 values), activations quantized by quantize_q8.wgsl:
//   out[t, p] = sum_b dw[row, b] * dx[t, b] * sum_{k in b} qw[row, k] * qx[t, k] (+ bias[row])
// row = rows[p] or p; row r's blocks start at block w_block0 + r * w_sb. Block sums are exact
// integers. One thread per output (t, p); only the listed rows are read.

//!include elem
//!include grid
//!include q8

// Bias stored as packed f16 (else f32).
override B_F16: bool = false;

//!include uniforms
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read_write> xq: array<u32>;
@group(0) @binding(3) var<storage, read> rows: array<i32>;
@group(0) @binding(4) var<storage, read> bias: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

fn load_b(e: u32) -> f32 {
  return unpack_elem(bias[elem_word(e, B_F16)][elem_lane(e, B_F16)], e, B_F16);
}

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = workgroup_index(wid, nwg) * 64u + lid;
  if (i >= u.T * u.R) {
    return;
  }
  let t = i / u.R;
  let p = i % u.R;
  var row = p;
  if (u.has_rows != 0u) {
    row = u32(rows[p]);
  }
  let nb = u.K / 32u;
  let wb0 = (u.w_block0 + row * u.w_sb) * Q8_BLOCK_WORDS;
  var s = 0.0;
  for (var b = 0u; b < nb; b++) {
    let wb = wb0 + b * Q8_BLOCK_WORDS;
    let xb = u.q_base + (t * nb + b) * 8u;
    var isum = 0;
    for (var j = 0u; j < 8u; j++) {
      isum += dot4(w[wb + 1u + j], xq[xb + j]);
    }
    s += (bitcast<f32>(w[wb]) * bitcast<f32>(xq[t * nb + b])) * f32(isum);
  }
  if (u.has_bias != 0u) {
    s += load_b(u.b_base + row);
  }
  out[t * u.R + p] = s;
}
