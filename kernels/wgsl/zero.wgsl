// Zero-fill: x[i] = 0 for i < n. Clears a pooled tensor buffer inside the compute pass (an
// encoder clearBuffer would end the pass), so a decode step stays one pass.

//!include grid

//!include uniforms
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

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
  x[i] = 0.0;
}
