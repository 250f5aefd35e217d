// Row-gathered transposed product, accumulated:
//   out[t, m] += sum_p a[t, p] * w[row(p), m],  row(p) = rows[p] or p.
// a [T, R] f32, w a strided view [N, M] (f32, or f16 packed two per u32), out [T, M].
// One dispatch handles positions p in [p_base, p_base + p_count); only those rows are read.
// Each thread owns 4 consecutive columns of TT tokens; a workgroup covers 256 columns.
// Split-K: workgroups also split the positions into n_split slices of `split` rows; with one
// slice `main` adds into out directly, otherwise it writes partial[s, t, m] and `reduce`
// adds the slices into out. Weight element of (row, m) is w_base + (row - row0)*w_stride + m.

//!include elem
//!include grid

override W_F16: bool = false;
// Aligned path: w_base, w_stride and M all multiples of 4.
override VEC: bool = false;

const WG: u32 = 64u;

//!include uniforms
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> a: array<f32>;
@group(0) @binding(3) var<storage, read> rows: array<i32>;
@group(0) @binding(4) var<storage, read_write> partial: array<f32>; // [n_split, T, M]
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

fn load_w(e: u32) -> f32 {
  return unpack_elem(w[elem_word(e, W_F16)][elem_lane(e, W_F16)], e, W_F16);
}

fn load_w4(e: u32, m: u32) -> vec4<f32> {
  if (VEC) {
    if (W_F16) {
      let v = w[e / 8u];
      let i = (e / 2u) % 4u; // 0 or 2
      return unpack_half4(v, i);
    }
    return bitcast<vec4<f32>>(w[e / 4u]);
  }
  var r = vec4<f32>(0.0);
  for (var c = 0u; c < 4u; c++) {
    if (m + c < u.M) {
      r[c] = load_w(e + c);
    }
  }
  return r;
}

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let n_ct = (u.M + 4u * WG - 1u) / (4u * WG);
  let n_tiles = (u.T + TT - 1u) / TT;
  let id = workgroup_index(wid, nwg);
  if (id >= n_ct * u.n_split * n_tiles) {
    return;
  }
  let ct = id % n_ct;
  let s = (id / n_ct) % u.n_split;
  let tile = id / (n_ct * u.n_split);
  let m = (ct * WG + lid) * 4u;
  if (m >= u.M) {
    return;
  }
  let t0 = tile * TT;
  let nt = min(TT, u.T - t0);
  let p0 = s * u.split;
  let p1 = min(p0 + u.split, u.p_count);
  var acc = array<vec4<f32>, 4>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
  for (var p = p0; p < p1; p++) {
    let pp = u.p_base + p;
    var row = pp;
    if (u.has_rows != 0u) {
      row = u32(rows[pp]);
    }
    let wv = load_w4(u.w_base + (row - u.row0) * u.w_stride + m, m);
    for (var j = 0u; j < TT; j++) {
      let tj = min(t0 + j, u.T - 1u); // fixed trip count: unrolled, acc in registers
      acc[j] += a[tj * u.R + pp] * wv;
    }
  }
  for (var j = 0u; j < TT; j++) {
    if (j < nt) {
      let o = (t0 + j) * u.M + m;
      let v = acc[j];
      for (var c = 0u; c < 4u; c++) {
        if (m + c < u.M) {
          if (u.n_split == 1u) {
            out[o + c] += v[c];
          } else {
            partial[s * u.T * u.M + o + c] = v[c];
          }
        }
      }
    }
  }
}

// out[t, m] += sum_s partial[s, t, m]; one thread per element of out.
@compute @workgroup_size(256)
fn reduce(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = workgroup_index(wid, nwg) * 256u + lid;
  let n = u.T * u.M;
  if (i >= n) {
    return;
  }
  var v = 0.0;
  for (var s = 0u; s < u.n_split; s++) {
    v += partial[s * n + i];
  }
  out[i] += v;
}
