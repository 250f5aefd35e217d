/**
 * The include step of the WGSL loader. WGSL has no includes, so helpers that several kernels
 * share live in kernels/wgsl/include/<name>.wgsl (not ops: no entry point) and a kernel pulls one
 * in with a line of its own:
 *
 *     //!include elem
 *
 * The line (surrounding spaces allowed) is replaced by the text of the include file. Includes
 * are not expanded inside include files, a name may be included once per kernel, and an unknown
 * name is an error that names the kernel and the known includes.
 */

/** Folder of the shared helper files, relative to this module. */
const INCLUDE_DIR = new URL("../../kernels/wgsl/include/", import.meta.url);

const INCLUDE_LINE = /^\s*\/\/!include\b(.*)$/;
const INCLUDE_NAME = /^[a-z0-9_]+$/;

/**
 * Expand the `//!include <name>` lines of one kernel's source.
 * @param source WGSL text of the kernel.
 * @param file the kernel's name, for error messages.
 * @param includes include name -> WGSL text (see {@link loadWgslIncludes}).
 * @returns the source with every include line replaced by the include's text.
 * @throws Error on an unknown or malformed name, a repeated include, or an include line inside
 *   an include file.
 */
export function expandIncludes(
  source: string,
  file: string,
  includes: ReadonlyMap<string, string>,
): string {
  const seen = new Set<string>();
  return source.split("\n").map((line, i) => {
    const m = INCLUDE_LINE.exec(line);
    if (!m) return line;
    const where = `${file}.wgsl:${i + 1}`;
    const name = m[1].trim();
    if (!INCLUDE_NAME.test(name)) {
      throw new Error(`${where}: bad include line "${line.trim()}" (want //!include <name>)`);
    }
    const text = includes.get(name);
    if (text === undefined) {
      const known = [...includes.keys()].sort().join(", ") || "none";
      throw new Error(
        `${where}: unknown include "${name}" (no kernels/wgsl/include/${name}.wgsl; known: ${known})`,
      );
    }
    if (seen.has(name)) throw new Error(`${where}: include "${name}" repeated`);
    seen.add(name);
    if (text.split("\n").some((l) => INCLUDE_LINE.test(l))) {
      throw new Error(`${where}: include "${name}" has an include line (nesting is not supported)`);
    }
    return text.replace(/\n$/, "");
  }).join("\n");
}

/**
 * Read every shared helper file, kernels/wgsl/include/<name>.wgsl.
 * @returns include name -> WGSL text.
 */
export async function loadWgslIncludes(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const entry of Deno.readDir(INCLUDE_DIR)) {
    if (!entry.isFile || !entry.name.endsWith(".wgsl")) continue;
    const name = entry.name.slice(0, -".wgsl".length);
    out.set(name, await Deno.readTextFile(new URL(entry.name, INCLUDE_DIR)));
  }
  return out;
}
