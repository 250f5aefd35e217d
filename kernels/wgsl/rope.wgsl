// Rotary embedding in place, HF "rotate_half" convention, on every head of x [T, nh*d]:
// for i < d/2, with angle = (pos0 + t) * inv_freq[i]:
//   x[i] <- x[i] cos - x[i + d/2] sin,  x[i + d/2] <- x[i + d/2] cos + x[i] sin.
// With TABLE the backend supplies (cos, sin) per (token, i), computed on the host in float64
// (exact and identical on every GPU; one small upload per step, shared by q and k of every
// layer). Otherwise the f32 angle is range-reduced (two-part 2*pi) before sin/cos, which WGSL
// only bounds on [-pi, pi] (GPU compilers may reassociate, so expect ~1e-3 at large positions).
// One thread per (token, head, i).

//!include elem
//!include grid

override W_F16: bool = false;
// Use the host-computed table tab[t, i] = (cos, sin) instead of computing angles here.
override TABLE: bool = false;

//!include uniforms
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> f: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> tab: array<f32>; // [T, d/2, 2]

fn load_w(e: u32) -> f32 {
  return unpack_elem(f[elem_word(e, W_F16)][elem_lane(e, W_F16)], e, W_F16);
}

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let half = u.d / 2u;
  let g = workgroup_index(wid, nwg) * 256u + lid;
  if (g >= u.T * u.nh * half) {
    return;
  }
  let i = g % half;
  let th = g / half; // t * nh + h
  let t = th / u.nh;
  var cs: f32;
  var sn: f32;
  if (TABLE) {
    cs = tab[(t * half + i) * 2u];
    sn = tab[(t * half + i) * 2u + 1u];
  } else {
    let ang = f32(u.pos0 + t) * load_w(u.f_base + i);
    let k = round(ang * 0.15915494309189535);
    let r = (ang - k * 6.28125) - k * 0.0019353071795864769;
    cs = cos(r);
    sn = sin(r);
  }
  let b = th * u.d + i;
  let a = x[b];
  let c = x[b + half];
  x[b] = a * cs - c * sn;
  x[b + half] = c * cs + a * sn;
}
