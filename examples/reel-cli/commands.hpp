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

// Set on the ranks other than 0 of an MPI run: they stay quiet (rank 0 reports for all; every
// rank ends with the same status).
inline bool g_quiet_rank = false;

extern const char* const kGenerateHelp;
extern const char* const kInspectHelp;
extern const char* const kConvertHelp;

}  // namespace reel_cli
