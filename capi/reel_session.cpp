// C API: endless-video sessions over reel::VideoSession (each chunk comes back as a
// reel_video) and streaming video writers over reel::VideoStreamWriter.
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>

#include "capi_internal.hpp"
#include "reel/video_session.hpp"
#include "reel/video_stream.hpp"

struct reel_session {
  std::optional<reel::VideoSession> session;
  reel_progress_fn progress = nullptr;
  void* progress_user_data = nullptr;
  bool keep_float = false;
};

struct reel_video_writer {
  std::optional<reel::VideoStreamWriter> writer;
};

namespace {

// The fields of reel_session_params version 1.
constexpr size_t kSessionParamsV1 = offsetof(reel_session_params, source) + sizeof(const reel_video*);

}  // namespace

extern "C" {

void reel_session_params_init(reel_session_params* params) {
  if (!params) return;
  std::memset(params, 0, sizeof *params);
  params->struct_size = sizeof *params;
  params->context_frames = 1;
  params->conditioning = REEL_CONTEXT_AUTO;
}

reel_status reel_session_create(reel_model* model, const reel_generate_params* generate,
                                const reel_session_params* params, reel_session** session) {
  return reel::capi::guarded("reel_session_create", [&] {
    using namespace reel;
    capi::require_pointer(model, "model");
    capi::require_pointer(generate, "generate");
    capi::require_pointer(params, "params");
    capi::require_pointer(session, "session (the output pointer)");
    capi::require_struct_size(params->struct_size, kSessionParamsV1, "reel_session_params");
    const reel_session_params& p = *params;
    VideoSessionOptions o;
    o.request = capi::generate_request(*generate, model);
    o.context_frames = p.context_frames == 0 ? 1 : p.context_frames;
    // The caller may store any integer in the enum field: read it as one (an enum object holding
    // no enumerator is undefined behaviour in C++).
    static_assert(sizeof(reel_context_conditioning) == sizeof(int32_t), "an int-sized enum");
    int32_t conditioning = 0;
    std::memcpy(&conditioning, &p.conditioning, sizeof conditioning);
    switch (conditioning) {
      case REEL_CONTEXT_AUTO: o.conditioning = ContextConditioning::automatic; break;
      case REEL_CONTEXT_PER_TOKEN: o.conditioning = ContextConditioning::per_token; break;
      case REEL_CONTEXT_REPLACEMENT: o.conditioning = ContextConditioning::replacement; break;
      default:
        throw Error(StatusCode::invalid_argument,
                    "params->conditioning " + std::to_string(conditioning) + " is not a reel_context_conditioning");
    }
    if (p.prompt_schedule) o.prompts = parse_prompt_schedule(p.prompt_schedule, "params->prompt_schedule");
    require(!(p.source_path && p.source), StatusCode::invalid_argument,
            "params->source_path and params->source are both set: give one clip to continue");
    if (p.source_path || p.source) {
      require(o.context_frames >= 1 && o.context_frames <= 4096, StatusCode::invalid_argument,
              "params->context_frames " + std::to_string(o.context_frames) + " is out of range");
      o.source = p.source ? p.source->video : read_video_tail(p.source_path, 4 * (o.context_frames - 1) + 1);
    }
    auto s = std::make_unique<reel_session>();
    s->session.emplace(model->pipeline, o);
    s->progress = generate->progress;
    s->progress_user_data = generate->progress_user_data;
    s->keep_float = o.request.keep_float_frames;
    *session = s.release();
  });
}

reel_status reel_session_next(reel_session* session, const char* prompt, reel_video** chunk) {
  return reel::capi::guarded("reel_session_next", [&] {
    using namespace reel;
    capi::require_pointer(session, "session");
    capi::require_pointer(chunk, "chunk (the output pointer)");
    capi::ProgressObserver observer(session->progress, session->progress_user_data);
    VideoChunk c = prompt ? session->session->next(prompt, &observer) : session->session->next(&observer);
    auto v = std::make_unique<reel_video>();
    v->video = std::move(c.video);
    v->notices = std::move(c.notices);
    if (session->keep_float && c.frames.defined()) {
      const float* f = c.frames.data<float>();
      v->frames_float.assign(f, f + c.frames.numel());
    }
    *chunk = v.release();
  });
}

void reel_session_free(reel_session* session) { delete session; }

int32_t reel_session_width(const reel_session* session) { return session ? session->session->width() : 0; }
int32_t reel_session_height(const reel_session* session) { return session ? session->session->height() : 0; }
double reel_session_fps(const reel_session* session) { return session ? session->session->fps() : 0.0; }
int32_t reel_session_chunks_done(const reel_session* session) { return session ? session->session->chunks_done() : 0; }
int64_t reel_session_frames_done(const reel_session* session) { return session ? session->session->frames_done() : 0; }

int64_t reel_session_frames_after(const reel_session* session, int32_t chunks) {
  return session && chunks >= 0 ? session->session->frames_after(chunks) : -1;
}

int32_t reel_session_chunks_for_seconds(const reel_session* session, double seconds) {
  if (!session || !std::isfinite(seconds) || seconds < 0 || seconds > 1e7) return -1;
  return session->session->chunks_for_seconds(seconds);
}

// ------------------------------------------------------------------ streaming writers

reel_status reel_video_writer_open(const char* path, int32_t width, int32_t height, double fps,
                                   reel_video_writer** writer) {
  return reel::capi::guarded("reel_video_writer_open", [&] {
    reel::capi::require_pointer(path, "path");
    reel::capi::require_pointer(writer, "writer (the output pointer)");
    reel::require(*path != '\0', reel::StatusCode::invalid_argument, "path is empty");
    auto w = std::make_unique<reel_video_writer>();
    w->writer.emplace(path, width, height, fps);
    *writer = w.release();
  });
}

reel_status reel_video_writer_write(reel_video_writer* writer, const reel_video* frames) {
  return reel::capi::guarded("reel_video_writer_write", [&] {
    reel::capi::require_pointer(writer, "writer");
    reel::capi::require_pointer(frames, "frames");
    writer->writer->write(frames->video);
  });
}

reel_status reel_video_writer_close(reel_video_writer* writer) {
  return reel::capi::guarded("reel_video_writer_close", [&] {
    reel::capi::require_pointer(writer, "writer");
    writer->writer->close();
  });
}

int64_t reel_video_writer_frame_count(const reel_video_writer* writer) {
  return writer ? writer->writer->frames_written() : 0;
}

void reel_video_writer_free(reel_video_writer* writer) { delete writer; }

}  // extern "C"
