// reel-cli convert: a Wan transformer checkpoint rewritten as a quantised GGUF file (the layout
// ComfyUI-GGUF reads; reel reads it back with --weight-type stored, kept quantised).
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "cli_args.hpp"
#include "commands.hpp"
#include "reel/wan_transformer.hpp"

namespace reel_cli {

const char* const kConvertHelp =
    "usage: reel-cli convert --transformer PATH --weight-type q8_0|q4_0|q4_k -o OUT.gguf [--head-dim N]\n"
    "  PATH: a diffusers transformer/ folder or a safetensors file (diffusers, original or ComfyUI\n"
    "  names; fp8-scaled files are dequantised first). The blocks' linear weights are quantised\n"
    "  (q8_0, q4_0 as ggml quantises them; q4_k by reel's encoder, Q8_0 for rows not a multiple of\n"
    "  256); everything else is stored in F32. Load the result with\n"
    "  reel-cli generate --transformer OUT.gguf --weight-type stored (or in ComfyUI-GGUF).\n";

int convert_command(const std::vector<std::string>& argv) {
  const Args args(argv, {"--help", "-h"});
  if (args.has("--help") || args.has("-h")) {
    std::fputs(kConvertHelp, stdout);
    return 0;
  }
  args.reject_unknown({"--help", "-h", "--transformer", "--weight-type", "-o", "--output", "--head-dim"});
  const auto in = args.get("--transformer");
  const auto out = args.get("-o") ? args.get("-o") : args.get("--output");
  if (!in || !out) throw UsageError("convert needs --transformer PATH and -o OUT.gguf");
  const auto type = args.get("--weight-type");
  if (!type || (*type != "q8_0" && *type != "q4_0" && *type != "q4_k"))
    throw UsageError("--weight-type must be q8_0, q4_0 or q4_k");
  const auto t0 = std::chrono::steady_clock::now();
  reel::convert_to_gguf(*in, *out, reel::parse_weight_format(*type), args.get_int("--head-dim", 0));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("wrote %s (%s, %.1f MB) in %.1f s\n", out->c_str(), type->c_str(),
              double(std::filesystem::file_size(*out)) / 1e6, s);
  return 0;
}

}  // namespace reel_cli
