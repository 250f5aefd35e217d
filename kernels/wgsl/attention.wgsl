// Causal attention of new queries over a KV cache (GQA via a slot -> kv-head map):
//   out[t, s*d + c] = sum_p softmax_p(scale * q[t, s*d:] . k[kv(s)*maxT + p, :]) v[kv(s)*maxT + p, c]
// for p in 0 ..= pos0 + t. q, out [T, S*d]; caches [nKv*maxT, d]; kv_of [S] (kv head of slot).
// One workgroup per (slot, token, chunk of `chunk` positions); positions in tiles of 64 with an
// online (running-max) softmax, so any context length works; each thread owns channels lid,
// lid+64, ... (d <= 256). With one chunk the result goes to out directly; otherwise (split-K
// over positions, "flash decoding", so short decode batches still fill a GPU) each chunk
// writes (max, sum, acc[d]) to part, and `combine` merges the chunks of each (slot, token).

//!include grid

const WG: u32 = 64u;

//!include uniforms
@group(0) @binding(1) var<storage, read_write> q: array<f32>;
@group(0) @binding(2) var<storage, read_write> kc: array<f32>;
@group(0) @binding(3) var<storage, read_write> vc: array<f32>;
@group(0) @binding(4) var<storage, read> kv_of: array<i32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> part: array<f32>; // [T*S, n_chunk, d + 2]

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
  let id = workgroup_index(wid, nwg);
  if (id >= u.S * u.T * u.n_chunk) {
    return; // workgroup-uniform
  }
  let ch = id % u.n_chunk;
  let st = id / u.n_chunk; // t * S + s
  let s = st % u.S;
  let t = st / u.S;
  let d = u.d;
  let qb = t * u.S * d + s * d;
  for (var c = lid; c < d; c += WG) {
    qs[c] = q[qb + c];
  }
  workgroupBarrier();
  let kv_base = u32(kv_of[s]) * u.max_t;
  let n_all = u.pos0 + t + 1u;
  let c0 = ch * u.chunk;
  let n = min(n_all, c0 + u.chunk); // this chunk: positions [c0, n)
  var m_run = -1e30;
  var l_run = 0.0;
  var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
  for (var p0 = c0; p0 < n; p0 += WG) {
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
  if (u.n_chunk == 1u) {
    for (var i = 0u; i < 4u; i++) {
      let c = lid + i * WG;
      if (c < d) {
        out[qb + c] = acc[i] / l_run;
      }
    }
    return;
  }
  let pb = (st * u.n_chunk + ch) * (d + 2u); // an empty chunk leaves (-1e30, 0, 0)
  for (var i = 0u; i < 4u; i++) {
    let c = lid + i * WG;
    if (c < d) {
      part[pb + 2u + c] = acc[i];
    }
  }
  if (lid == 0u) {
    part[pb] = m_run;
    part[pb + 1u] = l_run;
  }
}

// out[t, s*d + c] = sum_ch acc_ch[c] e^(m_ch - M) / sum_ch l_ch e^(m_ch - M), M = max_ch m_ch.
@compute @workgroup_size(64)
fn combine(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let st = workgroup_index(wid, nwg);
  if (st >= u.S * u.T) {
    return;
  }
  let d = u.d;
  let base = st * u.n_chunk * (d + 2u);
  var mx = -1e30;
  for (var ch = 0u; ch < u.n_chunk; ch++) {
    mx = max(mx, part[base + ch * (d + 2u)]);
  }
  var l = 0.0;
  for (var ch = 0u; ch < u.n_chunk; ch++) {
    let pb = base + ch * (d + 2u);
    l += part[pb + 1u] * exp(part[pb] - mx);
  }
  let qb = (st / u.S) * u.S * d + (st % u.S) * d;
  for (var c = lid; c < d; c += WG) {
    var a = 0.0;
    for (var ch = 0u; ch < u.n_chunk; ch++) {
      let pb = base + ch * (d + 2u);
      a += part[pb + 2u + c] * exp(part[pb] - mx);
    }
    out[qb + c] = a / l;
  }
}
