// The text of the kernel-image check (kernel_image.hpp): arch lists and the refusal reason.
#include "attention/kernel_image.hpp"

namespace reel::attn::kernel_image {

std::vector<int> parse_arch_list(std::string_view arch_list) {
  std::vector<int> out;
  size_t start = 0;
  while (start <= arch_list.size()) {
    size_t end = arch_list.find(',', start);
    if (end == std::string_view::npos) end = arch_list.size();
    std::string_view token = arch_list.substr(start, end - start);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    bool digits = !token.empty() && token.size() <= 6;
    int value = 0;
    for (char c : token) {
      digits = digits && c >= '0' && c <= '9';
      if (digits) value = value * 10 + (c - '0');
    }
    if (digits && value >= 10) out.push_back(value / 10);  // 800 → 80, 1210 → 121
    start = end + 1;
  }
  return out;
}

std::string sm_names(std::string_view arch_list) {
  std::string out;
  for (int cc : parse_arch_list(arch_list)) out += (out.empty() ? "sm_" : ", sm_") + std::to_string(cc);
  return out.empty() ? "no CUDA architecture" : out;
}

std::string no_code_reason(int device, int cc, std::string_view arch_list) {
  const std::string sm = std::to_string(cc);
  return "this build has no code for sm_" + sm + " (CUDA device " + std::to_string(device) + "; built for " +
         sm_names(arch_list) + "): rebuild with REEL_CUDA_ARCHITECTURES including " + sm;
}

}  // namespace reel::attn::kernel_image
