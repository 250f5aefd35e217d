// Grouped RMSNorm: every row of x [T, G*gs] is G groups of gs values (G = 1 for a hidden-state
// norm, G = heads for Qwen3's per-head q/k norm):
//   out[t, g*gs + c] = x[t, g*gs + c] / sqrt(mean_c(x^2) + eps) * weight[c].
// One workgroup per (token, group); out may alias x (each group is read fully before writing).

//!include elem
//!include grid

override W_F16: bool = false;
const WG: u32 = 64u;

//!include uniforms
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

var<workgroup> red: array<f32, 64>;
var<workgroup> part: array<f32, 8>;

fn load_w(e: u32) -> f32 {
  return unpack_elem(w[elem_word(e, W_F16)][elem_lane(e, W_F16)], e, W_F16);
}

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = workgroup_index(wid, nwg);
  if (id >= u.n_groups) {
    return; // workgroup-uniform
  }
  let base = id * u.gs;
  var ss = 0.0;
  for (var c = lid; c < u.gs; c += WG) {
    let v = x[base + c];
    ss += v * v;
  }
  red[lid] = ss;
  workgroupBarrier();
  if (lid < 8u) {
    var sm = 0.0;
    for (var j = lid; j < WG; j += 8u) {
      sm += red[j];
    }
    part[lid] = sm;
  }
  workgroupBarrier();
  var total = 0.0;
  for (var j = 0u; j < 8u; j++) {
    total += part[j];
  }
  let inv = inverseSqrt(total / f32(u.gs) + u.eps);
  for (var c = lid; c < u.gs; c += WG) {
    out[base + c] = x[base + c] * inv * load_w(u.w_base + c);
  }
}
