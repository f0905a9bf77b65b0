// reel-cli's commands; each returns the process exit status.
#pragma once
#include <string>
#include <vector>

namespace reel_cli {

int generate_command(const std::vector<std::string>& args);
int inspect_command(const std::vector<std::string>& args);
int kernels_command(const std::vector<std::string>& args);
int samplers_command(const std::vector<std::string>& args);
int convert_command(const std::vector<std::string>& args);

extern const char* const kGenerateHelp;
extern const char* const kInspectHelp;
extern const char* const kConvertHelp;

}  // namespace reel_cli
