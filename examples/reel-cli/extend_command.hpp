// reel-cli generate's endless-video mode (--chunks, --duration, --prompt-schedule, --continue).
#pragma once
#include <string>

#include "cli_args.hpp"
#include "reel/pipeline.hpp"

namespace reel_cli {

// Checks the endless-video options (before the model loads); UsageError naming the option.
void check_extension_args(const Args& args);
// True when the arguments ask for a clip made chunk by chunk.
bool wants_extension(const Args& args);
// Runs a VideoSession with `req` as the window, streaming every chunk into `output`.
int extend_command(const reel::Pipeline& pipe, reel::GenerateRequest req, const Args& args, const std::string& output);

}  // namespace reel_cli
