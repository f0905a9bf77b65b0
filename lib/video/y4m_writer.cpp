// write_video's YUV4MPEG2 output: the whole clip through the streaming Y4M encoder of
// video_stream_writer.cpp (header "YUV4MPEG2 W H F Ip A1:1 C420jpeg|C444 XCOLORRANGE=LIMITED",
// then "FRAME\n" and the Y, Cb, Cr planes per frame; BT.601 limited range, what Y4M readers assume).
#include "video/stream_codecs.hpp"
#include "video/video_writers.hpp"

namespace reel::video {

void write_y4m(const Video& video, const std::filesystem::path& path, Y4mChroma chroma) {
  encode_all(*open_y4m_encoder(path, video.width, video.height, video.fps, chroma), video);
}

}  // namespace reel::video
