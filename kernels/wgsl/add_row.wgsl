// x[t, :] += bias for every row; x [T, cols], bias a weight view of length cols.

//!include elem
//!include grid

override W_F16: bool = false;

//!include uniforms
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<vec4<u32>>;

fn load_b(e: u32) -> f32 {
  return unpack_elem(bias[elem_word(e, W_F16)][elem_lane(e, W_F16)], e, W_F16);
}

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = workgroup_index(wid, nwg) * 256u + lid;
  if (i >= u.n) {
    return;
  }
  x[i] += load_b(u.b_base + i % u.cols);
}
