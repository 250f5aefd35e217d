// out = silu(gate) * up, elementwise; gate, up, out [T, n]; out may alias gate.

//!include grid

//!include uniforms
@group(0) @binding(1) var<storage, read_write> gate: array<f32>;
@group(0) @binding(2) var<storage, read_write> up: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

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
  let g = gate[i];
  out[i] = g / (1.0 + exp(-g)) * up[i];
}
