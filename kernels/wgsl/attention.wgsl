// Causal attention of new queries over a KV cache (GQA via a slot -> kv-head map):
//   out[t, s*d + c] = sum_p softmax_p(scale * q[t, s*d:] . k[kv(s)*maxT + p, :]) v[kv(s)*maxT + p, c]
// for p in 0 ..= pos0 + t. q, out [T, S*d]; caches [nKv*maxT, d]; kv_of [S] (kv head of slot).
// One workgroup per (slot, token); positions in tiles of 64 with an online (running-max)
// softmax, so any context length works; each thread owns channels lid, lid+64, ... (d <= 256).

const WG: u32 = 64u;

struct U {
  T: u32,
  S: u32,
  d: u32,
  max_t: u32,
  pos0: u32,
  scale: f32,
  _p0: u32,
  _p1: u32,
}

@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read_write> q: array<f32>;
@group(0) @binding(2) var<storage, read_write> kc: array<f32>;
@group(0) @binding(3) var<storage, read_write> vc: array<f32>;
@group(0) @binding(4) var<storage, read> kv_of: array<i32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> qs: array<f32, 256>;
var<workgroup> sc: array<f32, 64>;
var<workgroup> pm: array<f32, 8>;
var<workgroup> ps: array<f32, 8>;

@compute @workgroup_size(64)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let id = wid.x + wid.y * nwg.x;
  if (id >= u.S * u.T) {
    return; // workgroup-uniform
  }
  let s = id % u.S;
  let t = id / u.S;
  let d = u.d;
  let qb = t * u.S * d + s * d;
  for (var c = lid; c < d; c += WG) {
    qs[c] = q[qb + c];
  }
  workgroupBarrier();
  let kv_base = u32(kv_of[s]) * u.max_t;
  let n = u.pos0 + t + 1u;
  var m_run = -1e30;
  var l_run = 0.0;
  var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
  for (var p0 = 0u; p0 < n; p0 += WG) {
    // scores of this tile, one position per thread
    let p = p0 + lid;
    var sv = -1e30;
    if (p < n) {
      let kb = (kv_base + p) * d;
      var dt = 0.0;
      for (var c = 0u; c < d; c++) {
        dt += qs[c] * kc[kb + c];
      }
      sv = dt * u.scale;
    }
    // tile max and sum in two barrier steps: 8 partials, then every thread combines them
    sc[lid] = sv;
    workgroupBarrier();
    if (lid < 8u) {
      var mx = -1e30;
      for (var j = lid; j < WG; j += 8u) {
        mx = max(mx, sc[j]);
      }
      pm[lid] = mx;
    }
    workgroupBarrier();
    var tile_max = pm[0];
    for (var j = 1u; j < 8u; j++) {
      tile_max = max(tile_max, pm[j]);
    }
    let m_new = max(m_run, tile_max);
    var e = 0.0;
    if (p < n) {
      e = exp(sv - m_new);
    }
    workgroupBarrier(); // everyone has read sc as scores
    sc[lid] = e;
    workgroupBarrier();
    if (lid < 8u) {
      var sm = 0.0;
      for (var j = lid; j < WG; j += 8u) {
        sm += sc[j];
      }
      ps[lid] = sm;
    }
    workgroupBarrier();
    var tile_sum = 0.0;
    for (var j = 0u; j < 8u; j++) {
      tile_sum += ps[j];
    }
    let f = exp(m_run - m_new);
    l_run = l_run * f + tile_sum;
    m_run = m_new;
    let np = min(WG, n - p0);
    for (var i = 0u; i < 4u; i++) {
      let c = lid + i * WG;
      if (c < d) {
        var a = acc[i] * f;
        for (var j = 0u; j < np; j++) {
          a += sc[j] * vc[(kv_base + p0 + j) * d + c];
        }
        acc[i] = a;
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    let c = lid + i * WG;
    if (c < d) {
      out[qb + c] = acc[i] / l_run;
    }
  }
}
