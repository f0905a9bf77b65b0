// C API: the video object (RGB24 frames, optional f32 frames, notices), saving and creating.
#include <cmath>

#include "capi_internal.hpp"

extern "C" {

int32_t reel_video_width(const reel_video* video) { return video ? video->video.width : 0; }
int32_t reel_video_height(const reel_video* video) { return video ? video->video.height : 0; }
int32_t reel_video_frame_count(const reel_video* video) { return video ? video->video.frames : 0; }
double reel_video_fps(const reel_video* video) { return video ? video->video.fps : 0.0; }

const uint8_t* reel_video_frames_rgb(const reel_video* video) {
  return video && !video->video.rgb.empty() ? video->video.rgb.data() : nullptr;
}

const float* reel_video_frames_float(const reel_video* video) {
  return video && !video->frames_float.empty() ? video->frames_float.data() : nullptr;
}

reel_status reel_video_save(const reel_video* video, const char* path) {
  return reel::capi::guarded("reel_video_save", [&] {
    reel::capi::require_pointer(video, "video");
    reel::capi::require_pointer(path, "path");
    reel::require(*path != '\0', reel::StatusCode::invalid_argument, "path is empty");
    reel::write_video(video->video, path);
  });
}

reel_status reel_video_check_path(const char* path) {
  return reel::capi::guarded("reel_video_check_path", [&] {
    reel::capi::require_pointer(path, "path");
    reel::require(*path != '\0', reel::StatusCode::invalid_argument, "path is empty");
    reel::check_video_path(path);
  });
}

reel_status reel_video_create(const uint8_t* rgb, int32_t width, int32_t height, int32_t frames, double fps,
                              reel_video** video) {
  return reel::capi::guarded("reel_video_create", [&] {
    using namespace reel;
    capi::require_pointer(rgb, "rgb");
    capi::require_pointer(video, "video (the output pointer)");
    require(std::isfinite(fps) && fps > 0, StatusCode::invalid_argument, "fps must be a positive number");
    auto v = std::make_unique<reel_video>();
    v->video = Video::blank(frames, height, width, fps);  // checks the sizes (positive, not too large)
    std::copy(rgb, rgb + v->video.rgb.size(), v->video.rgb.begin());
    *video = v.release();
  });
}

void reel_video_free(reel_video* video) { delete video; }

size_t reel_video_notice_count(const reel_video* video) { return video ? video->notices.size() : 0; }

const char* reel_video_notice(const reel_video* video, size_t index) {
  return video && index < video->notices.size() ? video->notices[index].c_str() : nullptr;
}

}  // extern "C"
