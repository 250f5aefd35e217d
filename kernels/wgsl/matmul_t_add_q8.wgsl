// Row-gathered transposed product, accumulated, on q8 weights (lib/formats/q8.ts):
//   out[t, m] += sum_p a[t, p] * d[row, m / 32] * q[row, m],  row = rows[p] or p.
// a [T, R], out [T, M] (M % 32 == 0); row r's blocks start at block w_block0 + r * w_sb (9
// words each: f32 scale, then 32 int8). a is not quantized. One thread per output (t, m).

//!include grid
//!include q8

//!include uniforms
@group(0) @binding(1) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read_write> a: array<f32>;
@group(0) @binding(3) var<storage, read> rows: array<i32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = workgroup_index(wid, nwg) * 64u + lid;
  if (i >= u.T * u.M) {
    return;
  }
  let t = i / u.M;
  let m = i % u.M;
  var s = 0.0;
  for (var p = 0u; p < u.R; p++) {
    var row = p;
    if (u.has_rows != 0u) {
      row = u32(rows[p]);
    }
    let wb = (u.w_block0 + row * u.w_sb + m / 32u) * Q8_BLOCK_WORDS;
    let k = m % 32u;
    let q = q8_value(w[wb + 1u + k / 4u], k);
    s += a[t * u.R + p] * (bitcast<f32>(w[wb]) * f32(q));
  }
  out[t * u.M + m] += s;
}
