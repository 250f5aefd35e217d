// Elements of a weight view bound as array<vec4<u32>>: f32 (four per word) or f16 packed two per
// u32 (eight per word, read with unpack2x16float, so no `enable f16`). Storage arrays cannot be
// passed to WGSL functions, so each shader loads the word from its own binding:
//   fn load_w(e: u32) -> f32 { return unpack_elem(w[elem_word(e, W_F16)], e, W_F16); }
// With an override constant for is_f16 the branches fold away when the pipeline is built.

// Index of the vec4<u32> word that holds element e.
fn elem_word(e: u32, is_f16: bool) -> u32 {
  if (is_f16) {
    return e / 8u;
  }
  return e / 4u;
}

// Element e, taken from its word (the word at elem_word(e, is_f16)).
fn unpack_elem(word: vec4<u32>, e: u32, is_f16: bool) -> f32 {
  if (is_f16) {
    return unpack2x16float(word[(e / 2u) % 4u])[e % 2u];
  }
  return bitcast<f32>(word[e % 4u]);
}
