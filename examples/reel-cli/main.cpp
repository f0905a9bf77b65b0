// reel-cli: text/image-to-video from the command line.
//
//   reel-cli generate --model models/tiny-wan-t2v --prompt "a red fox in the snow" -o fox.mp4
//   reel-cli inspect Wan2.1-T2V-1.3B-Diffusers
//   reel-cli convert --transformer Wan2.1-T2V-1.3B-Diffusers/transformer --weight-type q4_0 -o wan-Q4_0.gguf
//   reel-cli kernels | samplers
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "cli_args.hpp"
#include "commands.hpp"
#include "reel/status.hpp"

namespace {

const char* const kUsage =
    "usage: reel-cli COMMAND [options]\n"
    "  generate   make a video (reel-cli generate --help)\n"
    "  inspect    describe a model folder or checkpoint file\n"
    "  convert    write a transformer as a quantised GGUF file (reel-cli convert --help)\n"
    "  kernels    list the attention kernels\n"
    "  samplers   list the samplers and schedules\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  try {
    if (command == "generate") return reel_cli::generate_command(args);
    if (command == "inspect") return reel_cli::inspect_command(args);
    if (command == "convert") return reel_cli::convert_command(args);
    if (command == "kernels") return reel_cli::kernels_command(args);
    if (command == "samplers" || command == "schedules") return reel_cli::samplers_command(args);
    std::fprintf(stderr, "reel-cli: unknown command \"%s\"\n%s", command.c_str(), kUsage);
    return 2;
  } catch (const reel_cli::UsageError& e) {
    if (reel_cli::g_quiet_rank) return 2;
    std::fprintf(stderr, "reel-cli %s: %s\n%s", command.c_str(), e.what(),
                 command == "generate"  ? reel_cli::kGenerateHelp
                 : command == "inspect" ? reel_cli::kInspectHelp
                 : command == "convert" ? reel_cli::kConvertHelp
                                        : "");
    return 2;
  } catch (const reel::Error& e) {
    if (!reel_cli::g_quiet_rank)
      std::fprintf(stderr, "\nreel-cli %s: %s: %s\n", command.c_str(), reel::status_name(e.code()), e.what());
    return e.code() == reel::StatusCode::cancelled ? 130 : 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "\nreel-cli %s: out of memory\n", command.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "\nreel-cli %s: internal error: %s\n", command.c_str(), e.what());
    return 1;
  }
}
