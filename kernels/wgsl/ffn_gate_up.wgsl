// Fused SwiGLU gate/up of the FFN over kept neurons (first half of Backend.ffn):
//   act[t, p] = silu(x[t, :] . gate[row(p), :]) * (x[t, :] . up[row(p), :]),  row(p) = rows[p] or p.
// x [T, K] f32, gate/up strided views (f32, or f16 packed two per u32; usually the same bundled
// buffer), act [T, R]. Same scheme as matmul_rows.wgsl (ROWS = 256 / LANES outputs per
// workgroup, TT tokens, shared-memory reduction), with two dot products per row so x
// is read once and one dispatch replaces matmul, matmul, silu_mul.
// Rows of gate live at g_base + (row - row0) * g_stride, of up at u_base + (row - row0) * u_stride.

//!include elem
//!include grid

override W_F16: bool = false;
// Up stored as packed f16 (may differ from gate when the two live in different buffers).
override U_F16: bool = false;
// Aligned fast path (both views): f32 needs bases, strides, K % 4 == 0; f16 needs % 8.
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
@group(0) @binding(4) var<storage, read> wu: array<vec4<u32>>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>; // act

var<workgroup> red: array<f32, TT * WG>; // [TT][ROWS * LANES], gate
var<workgroup> red2: array<f32, TT * WG>; // up

fn load_w(e: u32) -> f32 {
  return unpack_elem(w[elem_word(e, W_F16)][elem_lane(e, W_F16)], e, W_F16);
}

fn load_u(e: u32) -> f32 {
  return unpack_elem(wu[elem_word(e, U_F16)][elem_lane(e, U_F16)], e, U_F16);
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

  var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0); // gate
  var acc2 = array<f32, 4>(0.0, 0.0, 0.0, 0.0); // up
  if (valid) {
    var row = u.p_base + p;
    if (u.has_rows != 0u) {
      row = u32(rows[u.p_base + p]);
    }
    let gb = u.w_base + (row - u.row0) * u.w_stride;
    let ub = u.u_base + (row - u.row0) * u.u_stride;
    if (VEC) {
      if (W_F16) {
        // U_F16 == W_F16 on this path
        let nq = u.K / 8u;
        for (var q = lane; q < nq; q += LANES) {
          let gv = w[gb / 8u + q];
          let uv = wu[ub / 8u + q];
          let g0 = unpack_half4(gv, 0u);
          let g1 = unpack_half4(gv, 2u);
          let u0 = unpack_half4(uv, 0u);
          let u1 = unpack_half4(uv, 2u);
          for (var j = 0u; j < TT; j++) {
            let tj = min(t0 + j, u.T - 1u); // fixed trip count: unrolled, acc in registers
            let xi = tj * (u.K / 4u) + 2u * q;
            let xa = x[xi];
            let xb = x[xi + 1u];
            acc[j] += dot(g0, xa) + dot(g1, xb);
            acc2[j] += dot(u0, xa) + dot(u1, xb);
          }
        }
      } else {
        let nq = u.K / 4u;
        for (var q = lane; q < nq; q += LANES) {
          let g = bitcast<vec4<f32>>(w[gb / 4u + q]);
          let uu = bitcast<vec4<f32>>(wu[ub / 4u + q]);
          for (var j = 0u; j < TT; j++) {
            let tj = min(t0 + j, u.T - 1u); // fixed trip count: unrolled, acc in registers
            let xv = x[tj * nq + q];
            acc[j] += dot(g, xv);
            acc2[j] += dot(uu, xv);
          }
        }
      }
    } else {
      for (var k = lane; k < u.K; k += LANES) {
        let gk = load_w(gb + k);
        let uk = load_u(ub + k);
        for (var j = 0u; j < TT; j++) {
          let tj = min(t0 + j, u.T - 1u); // fixed trip count: unrolled, acc in registers
          let xv = load_x(tj * u.K + k);
          acc[j] += gk * xv;
          acc2[j] += uk * xv;
        }
      }
    }
  }
  if (LANES == 1u) {
    // one thread per row (software adapters): no reduction, no barrier
    if (valid) {
      for (var j = 0u; j < TT; j++) {
        if (j < nt) {
          let g = acc[j];
          out[(t0 + j) * u.R + u.p_base + p] = g / (1.0 + exp(-g)) * acc2[j];
        }
      }
    }
    return;
  }
  for (var j = 0u; j < TT; j++) {
    red[j * 256u + lid] = acc[j];
    red2[j * 256u + lid] = acc2[j];
  }
  workgroupBarrier();
  // lane 0 of each row sums its LANES partials (see matmul_rows.wgsl)
  let row_base = slot * LANES;
  if (valid && lane == 0u) {
    for (var j = 0u; j < nt; j++) {
      var gs = 0.0;
      var us = 0.0;
      for (var l = 0u; l < LANES; l++) {
        gs += red[j * 256u + row_base + l];
        us += red2[j * 256u + row_base + l];
      }
      out[(t0 + j) * u.R + u.p_base + p] = gs / (1.0 + exp(-gs)) * us;
    }
  }
}
