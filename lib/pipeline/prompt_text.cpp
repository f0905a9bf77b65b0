// The one check every prompt's text passes before any work, wherever it comes from (a request,
// a prompt schedule, a session's next chunk): bounded size, valid UTF-8.
#include "pipeline/pipeline_impl.hpp"
#include "text/utf8.hpp"

namespace reel::pipeline {

void check_prompt_text(std::string_view text, const std::string& what) {
  require(text.size() <= kMaxPromptBytes, StatusCode::invalid_argument,
          what + " is " + std::to_string(text.size()) + " bytes, more than the " + std::to_string(kMaxPromptBytes) +
              " allowed (the text encoder reads only the first 512 tokens)");
  (void)text::utf8_decode(text, what);
}

}  // namespace reel::pipeline
