// Embedding lookup from a q8 table (lib/formats/q8.ts: blocks of 9 words, f32 scale then 32
// int8; element e in block e / 32): out[t, c] = table element w_base + ids[t] * w_stride + c,
// any alignment. out [T, cols]. One thread per output element.

//!include grid
//!include q8

//!include uniforms
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = workgroup_index(wid, nwg) * 256u + lid;
  if (i >= u.T * u.cols) {
    return;
  }
  let t = i / u.cols;
  let c = i % u.cols;
  let e = u.w_base + u32(ids[t]) * u.w_stride + c;
  let wb = (e / 32u) * Q8_BLOCK_WORDS;
  let k = e % 32u;
  let q = q8_value(w[wb + 1u + k / 4u], k);
  out[t * u.cols + c] = bitcast<f32>(w[wb]) * f32(q);
}
