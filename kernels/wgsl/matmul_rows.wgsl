// Row-gathered matrix product (GEMV for T = 1, GEMM for T > 1), optional bias:
//   out[t, p] = sum_k x[t, k] * w[row(p), k] (+ bias[row(p)]),  row(p) = rows[p] or p.
// x [T, K] f32, w rows of a strided view (f32, or f16 packed two per u32), out [T, R].
// One dispatch handles output columns [p_base, p_base + p_count); only those rows are read.
// A workgroup of 256 threads computes ROWS = 256 / LANES output columns for TT tokens; the
// lanes of a row stride over k (vec4 loads when aligned), then lane 0 of each row sums the
// partials from workgroup shared memory.
// Weight element e of a row lives at w_base + (row - row0) * w_stride + k (binding-relative).

//!include elem
//!include grid

override W_F16: bool = false;
// Bias stored as packed f16 (a bias buffer may differ in precision from the weights).
override B_F16: bool = false;
// Aligned fast path: f32 needs w_base, w_stride, K % 4 == 0; f16 needs them % 8 == 0.
override VEC: bool = false;

// Lanes per output row (a power of two dividing 256): 64 on GPUs (coalesced 1 KiB row reads),
// 1 on software adapters: llvmpipe vectorises across invocations, and without the
// shared-memory reduction (skipped when LANES == 1) the shader compiles ~30x faster there.
override LANES: u32 = 64u;
const WG: u32 = 256u;
override ROWS: u32 = WG / LANES;

//!include uniforms
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> rows: array<i32>;
@group(0) @binding(4) var<storage, read> bias: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> red: array<f32, TT * WG>; // [TT][ROWS * LANES]

fn load_w(e: u32) -> f32 {
  return unpack_elem(w[elem_word(e, W_F16)][elem_lane(e, W_F16)], e, W_F16);
}

fn load_b(e: u32) -> f32 {
  return unpack_elem(bias[elem_word(e, B_F16)][elem_lane(e, B_F16)], e, B_F16);
}

fn load_x(i: u32) -> f32 {
  return x[i / 4u][i % 4u];
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let n_groups = (u.p_count + ROWS - 1u) / ROWS;
  let n_tiles = (u.T + TT - 1u) / TT;
  let id = workgroup_index(wid, nwg);
  if (id >= n_groups * n_tiles) {
    return; // workgroup-uniform
  }
  let group = id % n_groups;
  let tile = id / n_groups;
  let slot = lid / LANES;
  let lane = lid % LANES;
  let p = group * ROWS + slot;
  let valid = p < u.p_count;
  let t0 = tile * TT;
  let nt = min(TT, u.T - t0);

  var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
  var row = 0u;
  if (valid) {
    if (u.has_rows != 0u) {
      row = u32(rows[u.p_base + p]);
    } else {
      row = u.p_base + p;
    }
    let base = u.w_base + (row - u.row0) * u.w_stride;
    if (VEC) {
      if (W_F16) {
        let nq = u.K / 8u;
        let q0 = base / 8u;
        for (var q = lane; q < nq; q += LANES) {
          let wv = w[q0 + q];
          let a = unpack_half4(wv, 0u);
          let b = unpack_half4(wv, 2u);
          for (var j = 0u; j < TT; j++) {
            let tj = min(t0 + j, u.T - 1u); // fixed trip count: unrolled, acc in registers
            let xi = tj * (u.K / 4u) + 2u * q;
            acc[j] += dot(a, x[xi]) + dot(b, x[xi + 1u]);
          }
        }
      } else {
        let nq = u.K / 4u;
        let q0 = base / 4u;
        for (var q = lane; q < nq; q += LANES) {
          let a = bitcast<vec4<f32>>(w[q0 + q]);
          for (var j = 0u; j < TT; j++) {
            let tj = min(t0 + j, u.T - 1u); // fixed trip count: unrolled, acc in registers
            acc[j] += dot(a, x[tj * nq + q]);
          }
        }
      }
    } else {
      for (var k = lane; k < u.K; k += LANES) {
        let wk = load_w(base + k);
        for (var j = 0u; j < TT; j++) {
          let tj = min(t0 + j, u.T - 1u); // fixed trip count: unrolled, acc in registers
          acc[j] += wk * load_x(tj * u.K + k);
        }
      }
    }
  }
  if (LANES == 1u) {
    // one thread per row (software adapters): no reduction, no barrier
    if (valid) {
      var b = 0.0;
      if (u.has_bias != 0u) {
        b = load_b(u.b_base + row - u.row0);
      }
      for (var j = 0u; j < TT; j++) {
        if (j < nt) {
          out[(t0 + j) * u.R + u.p_base + p] = acc[j] + b;
        }
      }
    }
    return;
  }
  for (var j = 0u; j < TT; j++) {
    red[j * 256u + lid] = acc[j];
  }
  workgroupBarrier();
  // lane 0 of each row sums its LANES partials (one barrier; a two-step tree costs seconds of
  // shader compilation on llvmpipe and little on GPUs, where LANES partials are 64 loads)
  let row_base = slot * LANES;
  if (valid && lane == 0u) {
    var b = 0.0;
    if (u.has_bias != 0u) {
      b = load_b(u.b_base + row - u.row0);
    }
    for (var j = 0u; j < nt; j++) {
      var sum = 0.0;
      for (var l = 0u; l < LANES; l++) {
        sum += red[j * 256u + row_base + l];
      }
      out[(t0 + j) * u.R + u.p_base + p] = sum + b;
    }
  }
}
