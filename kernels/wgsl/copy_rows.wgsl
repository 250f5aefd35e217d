// Copy n consecutive elements: dst[dst_off + i] = src[src_off + i] (whole rows of equal width;
// src and dst may be the same tensor when the ranges do not overlap).

//!include grid

//!include uniforms
@group(0) @binding(1) var<storage, read_write> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

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
  dst[u.dst_off + i] = src[u.src_off + i];
}
