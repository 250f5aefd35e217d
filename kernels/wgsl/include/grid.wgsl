// Dispatch grid: the backend spreads a large dispatch over x and y (x at most 65535 workgroups),
// so every entry point numbers its workgroups row-major over the 2D grid.

// Flat index of this workgroup in the dispatch.
fn workgroup_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}
