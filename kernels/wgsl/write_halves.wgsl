// Weight upload of a strided piece, in 16-bit units ("halves"), so one kernel places f32 (two
// halves a value), packed f16 (one) and q8 blocks (18 a block) at any half offset: row r of
// the packed source (halves src_base + r * len ..) goes to halves dst_base + r * dst_stride ..
// of dst (both arrays of u32, half h in word h / 2, bits 16 * (h % 2)). Rows never share a
// destination word when dst_stride > len, so one thread per destination word needs no atomics;
// a word only partly covered keeps its other half. Threads: rows * wpr (wpr >= words a row
// touches); the excess returns.

//!include grid

//!include uniforms
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

fn src_half(s: u32) -> u32 {
  return (src[s / 2u] >> (16u * (s % 2u))) & 0xffffu;
}

@compute @workgroup_size(256)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = workgroup_index(wid, nwg) * 256u + lid;
  if (i >= u.rows * u.wpr) {
    return;
  }
  let r = i / u.wpr;
  let d0 = u.dst_base + r * u.dst_stride; // first destination half of row r
  let w = d0 / 2u + i % u.wpr; // destination word of this thread
  let lo_in = 2u * w >= d0 && 2u * w < d0 + u.len;
  let hi_in = 2u * w + 1u >= d0 && 2u * w + 1u < d0 + u.len;
  if (!lo_in && !hi_in) {
    return;
  }
  let s0 = u.src_base + r * u.len; // first source half of row r
  var word = 0u;
  if (!lo_in || !hi_in) {
    word = dst[w];
  }
  if (lo_in) {
    word = (word & 0xffff0000u) | src_half(s0 + 2u * w - d0);
  }
  if (hi_in) {
    word = (word & 0x0000ffffu) | (src_half(s0 + 2u * w + 1u - d0) << 16u);
  }
  dst[w] = word;
}
