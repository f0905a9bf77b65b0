// reel-cli's progress display.
#include "progress_bar.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <utility>

namespace reel_cli {

std::string format_seconds(double s) {
  char buf[64];
  if (!(s >= 0) || !std::isfinite(s)) return "?";
  if (s < 1.0) std::snprintf(buf, sizeof buf, "%.0fms", s * 1000.0);
  else if (s < 60.0) std::snprintf(buf, sizeof buf, "%.1fs", s);
  else if (s < 3600.0) std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, (int(s) % 3600) / 60);
  return buf;
}

ProgressBar::ProgressBar(std::string preview_path)
    : tty_(isatty(STDERR_FILENO) != 0), preview_path_(std::move(preview_path)) {}

bool ProgressBar::on_preview(const reel::Preview& p) {
  if (preview_path_.empty() || p.frames <= 0) return true;
  const int scale = p.width >= 128 ? 1 : 4;  // latent-pixel previews ×4; a TAEHV decoder's at frame size
  const int picks[] = {0, p.frames / 2, p.frames - 1};
  const int n = p.frames >= 3 ? 3 : 1, w = p.width * scale, h = p.height * scale;
  reel::Video strip = reel::Video::blank(1, h, w * n, 1.0);
  for (int k = 0; k < n; ++k)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const uint8_t* src = p.rgb.data() + ((size_t(picks[k]) * p.height + y / scale) * p.width + x / scale) * 3;
        uint8_t* dst = strip.frame(0) + (size_t(y) * w * n + size_t(k) * w + x) * 3;
        dst[0] = src[0], dst[1] = src[1], dst[2] = src[2];
      }
  reel::write_video(strip, preview_path_);  // written whole, then renamed: never half a picture
  return true;
}

void ProgressBar::finish_line() {
  if (tty_ && !open_stage_.empty()) std::fputc('\n', stderr);
  open_stage_.clear();
}

bool ProgressBar::on_progress(const reel::Progress& p) {
  constexpr int kWidth = 28;
  const int filled = p.total > 0 ? int(double(kWidth) * p.step / p.total) : kWidth;
  std::string bar(size_t(filled), '#');
  bar.resize(kWidth, '.');
  const double per_step = p.step > 0 ? p.stage_seconds / p.step : 0.0;
  const double eta = per_step * (p.total - p.step);
  if (tty_ && !open_stage_.empty() && open_stage_ != p.stage) finish_line();
  std::fprintf(stderr, "%s%-8.*s [%s] %4d/%-4d %8s/step  ETA %-8s", tty_ ? "\r" : "", int(p.stage.size()),
               p.stage.data(), bar.c_str(), p.step, p.total, format_seconds(p.step_seconds).c_str(),
               format_seconds(eta).c_str());
  if (!tty_ || p.step == p.total) {
    std::fputc('\n', stderr);
    open_stage_.clear();
  } else {
    open_stage_ = std::string(p.stage);
  }
  std::fflush(stderr);
  return true;
}

void ProgressBar::on_notice(std::string_view message) {
  finish_line();
  std::fprintf(stderr, "note: %.*s\n", int(message.size()), message.data());
}

}  // namespace reel_cli
