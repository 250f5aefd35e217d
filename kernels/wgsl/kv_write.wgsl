// Write new keys or values into a cache: cache [nKv*maxT, d] (kv head h, position p at row
// h*maxT + p); kv [T, nh*d] holds kv heads heads[j] in slot j; token t goes to pos0 + t.
// One thread per element of kv.

//!include grid

//!include uniforms
@group(0) @binding(1) var<storage, read_write> cache: array<f32>;
@group(0) @binding(2) var<storage, read_write> kv: array<f32>;
@group(0) @binding(3) var<storage, read> heads: array<i32>;

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = workgroup_index(wid, nwg) * 256u + lid;
  let cols = u.nh * u.d;
  if (i >= u.T * cols) {
    return;
  }
  let t = i / cols;
  let j = (i % cols) / u.d;
  let c = i % u.d;
  let row = u32(heads[j]) * u.max_t + u.pos0 + t;
  cache[row * u.d + c] = kv[i];
}
