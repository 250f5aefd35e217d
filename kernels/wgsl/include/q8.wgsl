// q8 weight blocks (lib/formats/q8.ts) and q8 activations (quantize_q8.wgsl): a block of 32
// values is Q8_BLOCK_WORDS u32 words, word 0 the f32 scale, words 1..8 the int8 values packed
// four per u32 (little-endian, value k in word 1 + k / 4).

// u32 words per weight block.
const Q8_BLOCK_WORDS: u32 = 9u;

// Int8 value k of a block (any k; lane k % 4), from the word that holds it.
fn q8_value(word: u32, k: u32) -> i32 {
  return extractBits(bitcast<i32>(word), 8u * (k % 4u), 8u);
}

// Sum of the products of the four int8 lanes of a and b (exact).
fn dot4(a: u32, b: u32) -> i32 {
  let x = bitcast<i32>(a);
  let y = bitcast<i32>(b);
  return extractBits(x, 0u, 8u) * extractBits(y, 0u, 8u) +
    extractBits(x, 8u, 8u) * extractBits(y, 8u, 8u) +
    extractBits(x, 16u, 8u) * extractBits(y, 16u, 8u) +
    extractBits(x, 24u, 8u) * extractBits(y, 24u, 8u);
}
