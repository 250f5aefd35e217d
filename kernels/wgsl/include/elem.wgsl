// Elements of a weight view bound as array<vec4<u32>>: f32 (four per vec4, one per u32) or f16
// packed two per u32 (eight per vec4, read with unpack2x16float, so no `enable f16`). Storage
// arrays cannot be passed to WGSL functions, so each shader reads the u32 from its own binding:
//   fn load_w(e: u32) -> f32 {
//     return unpack_elem(w[elem_word(e, W_F16)][elem_lane(e, W_F16)], e, W_F16);
//   }
// With an override constant for is_f16 the branches fold away when the pipeline is built.

// Index of the vec4<u32> that holds element e.
fn elem_word(e: u32, is_f16: bool) -> u32 {
  if (is_f16) {
    return e / 8u;
  }
  return e / 4u;
}

// Component (0..3) of that vec4 whose u32 holds element e.
fn elem_lane(e: u32, is_f16: bool) -> u32 {
  if (is_f16) {
    return (e / 2u) % 4u;
  }
  return e % 4u;
}

// Element e from the u32 that holds it (the one at [elem_word(e)][elem_lane(e)]).
fn unpack_elem(bits: u32, e: u32, is_f16: bool) -> f32 {
  if (is_f16) {
    return unpack2x16float(bits)[e % 2u];
  }
  return bitcast<f32>(bits);
}

// Four consecutive f16 elements of an aligned vec4 read: the halves packed in words i and
// i + 1 (i = 0 for elements 0..3 of the vec4's eight, i = 2 for elements 4..7).
fn unpack_half4(v: vec4<u32>, i: u32) -> vec4<f32> {
  return vec4<f32>(unpack2x16float(v[i]), unpack2x16float(v[i + 1u]));
}
