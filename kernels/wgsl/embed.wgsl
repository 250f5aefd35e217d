// Embedding lookup: out[t, c] = table[ids[t], c] for t in [t_base, t_base + t_count);
// out [T, cols]; table row r starts at w_base + (r - row0) * w_stride (binding-relative,
// f32 or f16 packed two per u32). One thread per output element.

//!include elem
//!include grid

override W_F16: bool = false;

//!include uniforms
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn load_w(e: u32) -> f32 {
  return unpack_elem(w[elem_word(e, W_F16)][elem_lane(e, W_F16)], e, W_F16);
}

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = workgroup_index(wid, nwg) * 256u + lid;
  if (i >= u.t_count * u.cols) {
    return;
  }
  let t = u.t_base + i / u.cols;
  let c = i % u.cols;
  let r = u32(ids[t]);
  out[t * u.cols + c] = load_w(u.w_base + (r - u.row0) * u.w_stride + c);
}
