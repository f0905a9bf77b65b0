// reel-cli inspect: what a model folder or checkpoint file holds, and what is wrong with it.
#include <cstdio>

#include "cli_args.hpp"
#include "commands.hpp"
#include "reel/pipeline.hpp"

namespace reel_cli {

const char* const kInspectHelp =
    "usage: reel-cli inspect [--scan] FILE_OR_DIR\n"
    "  a diffusers model folder: detected variant, components, configuration, defaults;\n"
    "  a safetensors or GGUF file (transformer, VAE or umT5): configuration, tensors and dtypes.\n"
    "  --scan  also read every tensor and report those holding NaN or infinity (slow: reads it all)\n"
    "  Exit status 1 when a problem was found.\n";

int inspect_command(const std::vector<std::string>& argv) {
  const Args args(argv, {"--help", "-h", "--scan"});
  if (args.has("--help") || args.has("-h")) {
    std::fputs(kInspectHelp, stdout);
    return 0;
  }
  args.reject_unknown({"--help", "-h", "--scan"});
  if (args.positionals().size() != 1) throw UsageError("inspect takes one FILE_OR_DIR");
  const std::string& path = args.positionals()[0];
  const reel::ModelInspection m = reel::inspect_model(path, {.scan_values = args.has("--scan")});
  std::printf("%s: %s\n", path.c_str(), m.kind.c_str());
  for (const std::string& line : m.lines) std::printf("%s\n", line.c_str());
  for (const std::string& p : m.problems) std::printf("problem: %s\n", p.c_str());
  if (m.problems.empty()) std::printf("no problems found\n");
  return m.problems.empty() ? 0 : 1;
}

}  // namespace reel_cli
