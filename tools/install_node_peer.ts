/**
 * Installs an independent peer runtime under node_peers/<name>/node_modules with npm (install
 * scripts skipped), for the round-trip tests and the llama.cpp benchmark:
 *
 *   deno task llama-cpp:install        node-llama-cpp 3.21.1 + this platform's CPU build
 *                                      (the one @node-llama-cpp/* package, ~30 MB; 83 MB in all;
 *                                      no CUDA/Vulkan builds)
 *   deno task transformers-js:install  @huggingface/transformers 4.3.2 (with onnxruntime-node,
 *                                      ~475 MB)
 */

const LLAMA_CPP = "3.21.1";

/** The @node-llama-cpp/* package holding this platform's CPU build. */
export function llamaCppPlatformPackage(os = Deno.build.os, arch = Deno.build.arch): string {
  const map: Record<string, string> = {
    "linux-x86_64": "linux-x64",
    "linux-aarch64": "linux-arm64",
    "darwin-aarch64": "mac-arm64-metal",
    "darwin-x86_64": "mac-x64",
    "windows-x86_64": "win-x64",
    "windows-aarch64": "win-arm64",
  };
  const name = map[`${os}-${arch}`];
  if (!name) throw new Error(`node-llama-cpp has no prebuilt binaries for ${os}-${arch}`);
  return `@node-llama-cpp/${name}@${LLAMA_CPP}`;
}

/** npm packages per peer. */
function packagesOf(peer: string): string[] {
  if (peer === "llama_cpp") return [`node-llama-cpp@${LLAMA_CPP}`, llamaCppPlatformPackage()];
  if (peer === "transformers_js") return ["@huggingface/transformers@4.3.2"];
  throw new Error(`unknown peer "${peer}" (llama_cpp or transformers_js)`);
}

if (import.meta.main) {
  const peer = Deno.args[0] ?? "";
  let pkgs: string[];
  try {
    pkgs = packagesOf(peer);
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(2);
  }
  const dir = new URL(`../node_peers/${peer}/`, import.meta.url).pathname;
  const args = [
    "install",
    "--prefix",
    dir,
    "--ignore-scripts",
    // llama.cpp: only the one platform package named above, not its CUDA/Vulkan siblings.
    ...(peer === "llama_cpp" ? ["--omit=optional"] : []),
    "--no-save",
    "--no-package-lock",
    "--no-audit",
    "--no-fund",
    ...pkgs,
  ];
  console.log(`npm ${args.join(" ")}`);
  const { code } = await new Deno.Command("npm", { args, stdout: "inherit", stderr: "inherit" })
    .output();
  Deno.exit(code);
}
