// Gate and up products of the fused SwiGLU FFN on q8 weights (lib/formats/q8.ts), activations
// quantized by quantize_q8.wgsl (as in matmul_rows_q8.wgsl):
//   act[t, p] = silu(x[t] . gate[row]) * (x[t] . up[row]),  row = rows[p] or p.
// gate row r starts at block g_block0 + r * g_sb of binding g, up row r at u_block0 + r * u_sb
// of binding up (9 words per block). One thread per (t, p).

//!include grid
//!include q8

//!include uniforms
@group(0) @binding(1) var<storage, read> g: array<u32>;
@group(0) @binding(2) var<storage, read> up: array<u32>;
@group(0) @binding(3) var<storage, read_write> xq: array<u32>;
@group(0) @binding(4) var<storage, read> rows: array<i32>;
@group(0) @binding(5) var<storage, read_write> act: array<f32>;

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
  let gb0 = (u.g_block0 + row * u.g_sb) * Q8_BLOCK_WORDS;
  let ub0 = (u.u_block0 + row * u.u_sb) * Q8_BLOCK_WORDS;
  var sg = 0.0;
  var su = 0.0;
  for (var b = 0u; b < nb; b++) {
    let xb = u.q_base + (t * nb + b) * 8u;
    var ig = 0;
    var iu = 0;
    for (var j = 0u; j < 8u; j++) {
      let xw = xq[xb + j];
      ig += dot4(g[gb0 + b * Q8_BLOCK_WORDS + 1u + j], xw);
      iu += dot4(up[ub0 + b * Q8_BLOCK_WORDS + 1u + j], xw);
    }
    let dx = bitcast<f32>(xq[t * nb + b]);
    sg += (bitcast<f32>(g[gb0 + b * Q8_BLOCK_WORDS]) * dx) * f32(ig);
    su += (bitcast<f32>(up[ub0 + b * Q8_BLOCK_WORDS]) * dx) * f32(iu);
  }
  act[t * u.R + p] = sg / (1.0 + exp(-sg)) * su;
}
