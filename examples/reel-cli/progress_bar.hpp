// reel-cli's progress display on stderr: one bar per stage (stage, step/total, s/step, ETA),
// redrawn in place on a terminal, one line per step otherwise (logs); and --preview: each
// denoising step's preview written to a PNG (first, middle and last latent frame, ×4).
#pragma once
#include <string>
#include <string_view>

#include "reel/pipeline.hpp"

namespace reel_cli {

class ProgressBar final : public reel::GenerateObserver {
 public:
  explicit ProgressBar(std::string preview_path = {});
  bool on_progress(const reel::Progress& p) override;
  bool on_preview(const reel::Preview& p) override;
  void on_notice(std::string_view message) override;

 private:
  bool tty_;
  std::string preview_path_;
  std::string open_stage_;  // a stage whose line is not finished yet (terminal mode)
  void finish_line();
};

// "1m05s", "12.3s", "850ms"
std::string format_seconds(double seconds);

}  // namespace reel_cli
