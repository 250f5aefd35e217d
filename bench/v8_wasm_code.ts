/**
 * The machine code V8 (the Deno running this) generates for one export of a kernel module: what
 * the CPU really runs, which `llvm-objdump -d` of the .wasm cannot show (V8's bounds checks,
 * constants rematerialised inside loops, spills). The module is compiled by TurboFan in a child
 * Deno with `--perf-prof` (V8's perf jitdump), the function's code is cut out of the jitdump and
 * disassembled with binutils' `objdump` (x86-64 only). Prints the disassembly, then a summary:
 * instructions, vector instructions, and conditional jumps to the function's out-of-line code
 * (on x86-64 each explicit bounds check is a `cmp` + `jae` to a trap stub).
 *
 *   deno run -A bench/v8_wasm_code.ts [--wasm=kernels/wasm/seap_kernels.wasm] --export=matmul_q8
 *     [--summary]   (the summary only)
 *
 * Found with it (Deno 2.9.6, V8 15, x86-64): every wasm32 and memory64 load and store carries an
 * explicit bounds check (this Deno does not enable V8's trap handler), so a kernel's speed
 * follows its count of memory accesses as well as its SIMD ops; and a `v128.const` used inside a
 * loop is rebuilt there on every iteration (two 64-bit immediates and an insert).
 */

import { parseArgs } from "node:util";

/** LEB128 unsigned at `o`: [value, next offset]. */
function leb(b: Uint8Array, o: number): [number, number] {
  let r = 0, s = 0;
  for (;;) {
    const x = b[o++];
    r += (x & 0x7f) * 2 ** s;
    s += 7;
    if (x < 0x80) return [r, o];
  }
}

/** Memory import flags (bit 1 shared, bit 2 memory64) and export name -> function index. */
export function moduleInfo(bytes: Uint8Array): { memFlags: number; funcs: Map<string, number> } {
  const text = new TextDecoder();
  let o = 8, memFlags = 0, importedFuncs = 0;
  const funcs = new Map<string, number>();
  while (o < bytes.length) {
    const id = bytes[o++];
    const [size, start] = leb(bytes, o);
    const end = start + size;
    let p = start;
    if (id === 2 || id === 7) {
      let n: number;
      [n, p] = leb(bytes, p);
      for (let i = 0; i < n; i++) {
        let len: number;
        if (id === 2) {
          [len, p] = leb(bytes, p);
          p += len; // module name
        }
        [len, p] = leb(bytes, p);
        const name = text.decode(bytes.subarray(p, p + len));
        p += len;
        const kind = bytes[p++];
        if (id === 7) {
          let idx: number;
          [idx, p] = leb(bytes, p);
          if (kind === 0) funcs.set(name, idx);
        } else if (kind === 0) {
          [, p] = leb(bytes, p);
          importedFuncs++;
        } else if (kind === 2) {
          memFlags = bytes[p++];
          [, p] = leb(bytes, p);
          if (memFlags & 1) [, p] = leb(bytes, p);
        } else {
          throw new Error(`import kind ${kind} not handled`);
        }
      }
    }
    o = end;
  }
  if (importedFuncs) throw new Error("modules importing functions are not handled");
  return { memFlags, funcs };
}

/** Code records of a V8 perf jitdump: name, load address, machine code. */
export function jitdumpCode(dump: Uint8Array): { name: string; vma: bigint; code: Uint8Array }[] {
  const dv = new DataView(dump.buffer, dump.byteOffset, dump.byteLength);
  const out: { name: string; vma: bigint; code: Uint8Array }[] = [];
  let o = dv.getUint32(8, true); // header size
  while (o + 16 <= dump.length) {
    const id = dv.getUint32(o, true), total = dv.getUint32(o + 4, true);
    if (total === 0) break;
    if (id === 0) { // JIT_CODE_LOAD: pid, tid, vma, code_addr, code_size, code_index, name\0, code
      const vma = dv.getBigUint64(o + 24, true);
      const size = Number(dv.getBigUint64(o + 40, true));
      const nameAt = o + 56;
      const nameEnd = dump.indexOf(0, nameAt);
      const name = new TextDecoder().decode(dump.subarray(nameAt, nameEnd));
      out.push({ name, vma, code: dump.slice(nameEnd + 1, nameEnd + 1 + size) });
    }
    o += total;
  }
  return out;
}

const CHILD = `
const [file, flags] = Deno.args;
const f = Number(flags);
const desc = { initial: 64, maximum: 1024, shared: (f & 2) !== 0 };
const mem = new WebAssembly.Memory(
  f & 4 ? { ...desc, initial: 64n, maximum: 1024n, address: "i64" } : desc,
);
new WebAssembly.Instance(new WebAssembly.Module(Deno.readFileSync(file)), { env: { memory: mem } });
`;

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      wasm: { type: "string", default: "kernels/wasm/seap_kernels.wasm" },
      export: { type: "string" },
      summary: { type: "boolean", default: false },
    },
  });
  if (!values.export) throw new Error("--export=NAME is required (e.g. --export=matmul_q8)");
  const file = await Deno.realPath(values.wasm);
  const { memFlags, funcs } = moduleInfo(await Deno.readFile(file));
  const idx = funcs.get(values.export);
  if (idx === undefined) {
    throw new Error(
      `${values.wasm} exports no function ${values.export}; it has ${[...funcs.keys()].join(", ")}`,
    );
  }
  const dir = await Deno.makeTempDir({ prefix: "v8_wasm_code_" });
  try {
    await Deno.writeTextFile(`${dir}/child.ts`, CHILD);
    const run = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--v8-flags=--perf-prof,--no-liftoff,--no-wasm-lazy-compilation,--experimental-wasm-fp16",
        `${dir}/child.ts`,
        file,
        String(memFlags),
      ],
      cwd: dir,
      stderr: "inherit",
    }).output();
    if (!run.success) throw new Error("the child Deno failed to compile the module");
    const dump = [...Deno.readDirSync(dir)].find((e) => /^jit-\d+\.dump$/.test(e.name));
    if (!dump) throw new Error("V8 wrote no jitdump (--perf-prof unsupported on this platform?)");
    const rec = jitdumpCode(await Deno.readFile(`${dir}/${dump.name}`))
      .find((r) => r.name.endsWith(`-${idx}-turbofan`));
    if (!rec) throw new Error(`no TurboFan code for function ${idx} in the jitdump`);
    await Deno.writeFile(`${dir}/code.bin`, rec.code);
    const dis = await new Deno.Command("objdump", {
      args: ["-D", "-b", "binary", "-mi386:x86-64", `--adjust-vma=${rec.vma}`, `${dir}/code.bin`],
    }).output().catch(() => {
      throw new Error("objdump (binutils) is needed: apt install binutils");
    });
    const lines = new TextDecoder().decode(dis.stdout).split("\n")
      .filter((l) => /^\s+[0-9a-f]+:\t/.test(l));
    const ins = lines.map((l) => l.split("\t")[2] ?? "").filter((s) => s.trim() !== "");
    if (!values.summary) console.log(lines.join("\n"));
    const vec = ins.filter((s) => /\bv[a-z0-9]+\s.*%xmm/.test(s)).length;
    const jae = ins.filter((s) => /^jae\s/.test(s)).length;
    console.log(
      `${values.export} (function ${idx}, ${rec.code.length} bytes): ${ins.length} instructions, ` +
        `${vec} on xmm registers, ${jae} jae (bounds checks jump to traps with jae)`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
