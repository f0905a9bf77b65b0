// Internal: hands a diagnostic to the handler set with reel::set_log_handler (dropped when
// there is none). For messages that are not errors, e.g. FFmpeg's warnings.
#pragma once
#include <string>

namespace reel {

void log_message(const std::string& message);

}  // namespace reel
