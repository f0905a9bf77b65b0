// reel-cli generate: loads a model, generates with a progress bar (Ctrl-C cancels cleanly),
// writes the video and prints a summary.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>

#include "cli_args.hpp"
#include "commands.hpp"
#include "extend_command.hpp"
#include "progress_bar.hpp"
#include "reel/backend.hpp"
#include "reel/distributed.hpp"
#include "reel/pipeline.hpp"
#include "reel/video_io.hpp"

namespace reel_cli {

const char* const kGenerateHelp =
    "usage: reel-cli generate --model DIR --prompt \"...\" -o out.mp4 [options]\n"
    "  --model DIR            diffusers model folder (model_index.json, transformer/, vae/, ...)\n"
    "  --transformer PATH     explicit components instead of (or over) the folder's:\n"
    "  --transformer-2 PATH     safetensors files or folders (ComfyUI-style files work)\n"
    "  --vae PATH --text-encoder PATH --tokenizer PATH\n"
    "  --image-encoder PATH   Wan 2.1 I2V: the CLIP image encoder (default: the folder's image_encoder/)\n"
    "  --prompt TEXT          what to generate\n"
    "  --negative TEXT        negative prompt (default: empty)\n"
    "  --image FILE           first frame (PNG/JPEG) for image-to-video models\n"
    "  --size WxH             e.g. 832x480 (default: the model's; rounded to its multiple)\n"
    "  --frames N             4k+1 frames (default: the model's, e.g. 81)\n"
    "  --steps N              denoising steps (default: the model's, e.g. 50)\n"
    "  --guidance G           classifier-free guidance (default 5; 1 = none)\n"
    "  --guidance-2 G         Wan 2.2 A14B low-noise expert guidance\n"
    "  --shift S              flow shift (default: scheduler_config.json)\n"
    "  --sampler NAME         unipc (default), euler, dpmpp_2m, heun, ... (reel-cli samplers)\n"
    "  --schedule NAME        flow_unipc, flow_euler, karras, ... (default: the sampler's)\n"
    "  --seed N               random seed (default 0)\n"
    "  --device cpu|cuda[:N]  where the transformer and the VAE run (default cpu)\n"
    "  --text-encoder-device D  where umT5 runs (default cpu: keeps ~11 GB off the GPU)\n"
    "  --attention KERNEL     the transformer's attention kernel (reel-cli kernels; default: best)\n"
    "  --offload              GPU: upload the transformer per request, free it before the decode\n"
    "  --threads N            CPU threads (default: all)\n"
    "  --map-weights          use weights in place in the memory-mapped files (no copy; the files\n"
    "                         must not change while it runs)\n"
    "  --precision bf16|f32   bf16 (default, fast) or f32\n"
    "  --lora FILE[:S][@high|@low]  a LoRA (diffusers, ComfyUI, Kohya or .diff layout) at strength\n"
    "                         S (default 1); @high/@low: one expert of Wan 2.2 A14B. Repeatable.\n"
    "                         Distillation LoRAs: see docs/lora.md for steps, shift and guidance 1\n"
    "  --lora-mode M          merge (default: into the weights, fastest) or runtime (side paths)\n"
    "  --weight-type T        the transformer's block linears (CPU): q8_0, q4_0 or q4_k quantised\n"
    "                         at load (0.63x / 0.38x / 0.38x the memory of bf16, ~2x faster with\n"
    "                         AVX-512 VNNI; q4_k more accurate than q4_0),\n"
    "                         stored (a GGUF file's quantised tensors, any type, kept as they are),\n"
    "                         compute\n"
    "  -o, --output FILE      .mp4 / .webm (FFmpeg builds), .y4m, .png (1 frame), or DIR/ for PNGs\n"
    "  --variants N           N clips from seeds seed, seed+1, ... in one run, their transformer\n"
    "                         calls batched (each equals its own run); written as out_s<seed>.mp4\n"
    "  --variant-batch B      variants per transformer batch (default: as many as free memory holds)\n"
    "  --step-cache M:T       skip transformer calls whose output is predictable: M easycache or\n"
    "                         teacache, T the threshold (larger skips more), e.g. teacache:0.2;\n"
    "                         or fast (= easycache:0.1: about half the calls, ~28 dB from uncached)\n"
    "  --preview FILE.png     after every denoising step, a preview of the clip so far (first,\n"
    "                         middle and last latent frame; cheap, no VAE): stop early if it looks wrong\n"
    "  --preview-decoder F    draw the previews at the frame size with this TAEHV decoder\n"
    "                         (taew2_1.safetensors / taew2_2.safetensors, github.com/madebyollin/taehv)\n"
    "several processes (docs/distributed.md): mpirun -np N reel-cli generate ... splits the\n"
    "transformer's tokens over the N ranks (rank 0 decodes, reports and writes)\n"
    "  --ulysses U --ring R   the split: U·R = N, U divides the heads (default: the most Ulysses)\n"
    "                         with --device cuda each rank takes its machine's GPU <local rank>\n"
    "                         and the tokens move by NCCL (when built with it, one GPU per rank)\n"
    "endless video (docs/extension.md): --frames is then the window, extended chunk by chunk and\n"
    "streamed into the output as it is made\n"
    "  --chunks N             windows to generate\n"
    "  --duration T           or as many as 60s / 1.5m of video take (trimmed to the exact length)\n"
    "  --prompt-schedule FILE one \"<start> <prompt>\" per line, start a chunk (3) or seconds (7.5s)\n"
    "  --context-frames K     latent frames carried into the next window (default 1)\n"
    "  --conditioning MODE    auto (default), per-token or replacement\n"
    "  --continue FILE        extend this clip (.y4m, .mp4/.webm, PNG folder); it opens the output\n";

namespace {

// "fox.mp4", seed 7 → "fox_s7.mp4"; "frames/" → "frames_s7/".
std::string variant_path(const std::string& output, uint64_t seed) {
  const std::string tag = "_s" + std::to_string(seed);
  if (output.ends_with('/')) return output.substr(0, output.size() - 1) + tag + "/";
  const size_t slash = output.find_last_of('/'), dot = output.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return output + tag;
  return output.substr(0, dot) + tag + output.substr(dot);
}

int write_variants(const reel::Pipeline& pipe, const reel::GenerateRequest& req, int count, int batch, ProgressBar& bar,
                   const std::string& output) {
  if (batch < 0) throw UsageError("--variant-batch must be >= 0 (0: as many as free memory holds)");
  std::vector<uint64_t> seeds;
  for (int i = 0; i < count; ++i) seeds.push_back(req.seed + uint64_t(i));
  for (uint64_t s : seeds) reel::check_video_path(variant_path(output, s));
  const std::vector<reel::GenerateResult> out = pipe.generate_variants(req, seeds, &bar, batch);
  for (const reel::GenerateResult& r : out) {
    const std::string path = variant_path(output, r.seed);
    reel::write_video(r.video, path);
    std::printf("wrote %s: %dx%d, %d frames, seed %llu\n", path.c_str(), r.video.width, r.video.height,
                r.video.frames, static_cast<unsigned long long>(r.seed));
  }
  double seconds = 0;
  for (const reel::StageTime& t : out[0].timings) seconds += t.seconds;
  std::fprintf(stderr, "%d variants in %s (%s per variant)\n", count, format_seconds(seconds).c_str(),
               format_seconds(seconds / count).c_str());
  return 0;
}

// MPI_COMM_WORLD when mpirun (or another launcher) started several ranks; null in one process.
std::shared_ptr<reel::Communicator> mpi_ranks(const Args& args) {
  if (reel::launched_with_several_ranks()) {
    if (!reel::mpi_built())
      throw reel::Error(reel::StatusCode::unsupported,
                        "started with several ranks, but this reel-cli was built without MPI: every rank would make "
                        "the whole video (install libopenmpi-dev and rebuild)");
    return reel::mpi_world();
  }
  if (args.get_int("--ulysses", 0) > 1 || args.get_int("--ring", 0) > 1)
    throw UsageError("--ulysses and --ring split the work over MPI ranks: start reel-cli with mpirun -np N");
  return nullptr;
}

// This rank's index among the ranks of its machine (Open MPI, MPICH, Slurm), 0 if unknown.
int local_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"})
    if (const char* v = std::getenv(name)) return std::max(0, std::atoi(v));
  return 0;
}

// Runs `work` on every rank; with several ranks they then agree, so that one rank's failure
// ends every rank with its status (no rank left waiting in a collective).
void on_every_rank(const std::shared_ptr<reel::Communicator>& world, const std::function<void()>& work) {
  if (!world) return work();
  std::exception_ptr failed;
  try {
    work();
  } catch (...) {
    failed = std::current_exception();
  }
  reel::agree(*world, failed);
}

std::atomic<bool> g_cancel{false};
extern "C" void on_stop_signal(int) { g_cancel = true; }

// "style.safetensors:0.8@low" → path, strength 0.8, low-noise expert. The strength is the text
// after the last ':' when it looks like a number (paths may hold ':' and '@' too).
reel::LoraSpec parse_lora(std::string text) {
  reel::LoraSpec spec;
  for (const auto& [tag, expert] : {std::pair{"@high", reel::LoraExpert::high_noise}, std::pair{"@low", reel::LoraExpert::low_noise}})
    if (text.ends_with(tag)) {
      spec.expert = expert;
      text.resize(text.size() - std::string_view(tag).size());
      break;
    }
  if (const size_t colon = text.rfind(':'); colon != std::string::npos) {
    const std::string tail = text.substr(colon + 1);
    if (!tail.empty() && tail.find_first_not_of("0123456789.+-eE") == std::string::npos) {
      spec.strength = parse_float("--lora strength", tail);
      text.resize(colon);
    }
  }
  if (text.empty()) throw UsageError("--lora needs a file: --lora FILE[:STRENGTH][@high|@low]");
  spec.path = text;
  return spec;
}

void parse_size(const std::string& text, int& width, int& height) {
  const size_t x = text.find_first_of("xX");
  const auto digits = [](const std::string& s) {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
  };
  if (x == std::string::npos || !digits(text.substr(0, x)) || !digits(text.substr(x + 1)))
    throw UsageError("--size must look like 832x480, got \"" + text + "\"");
  width = parse_int("--size width", text.substr(0, x));
  height = parse_int("--size height", text.substr(x + 1));
  if (width <= 0 || height <= 0) throw UsageError("--size must be positive, got \"" + text + "\"");
}

}  // namespace

int generate_command(const std::vector<std::string>& argv) {
  const Args args(argv, {"--help", "-h", "--offload", "--map-weights"}, {"--lora"});
  if (args.has("--help") || args.has("-h")) {
    std::fputs(kGenerateHelp, stdout);
    return 0;
  }
  args.reject_unknown({"--model", "--transformer", "--transformer-2", "--vae", "--text-encoder", "--tokenizer", "--image-encoder",
                       "--prompt", "--negative", "--image", "--size", "--frames", "--steps", "--guidance",
                       "--guidance-2", "--shift", "--sampler", "--schedule", "--seed", "--device", "--text-encoder-device", "--attention", "--offload", "--threads", "--map-weights",
                       "--precision", "-o", "--output", "--chunks", "--duration", "--prompt-schedule",
                       "--context-frames", "--conditioning", "--continue", "--preview", "--preview-decoder", "--variants", "--variant-batch", "--step-cache",
                       "--lora", "--lora-mode", "--weight-type", "--ulysses", "--ring"});
  if (!args.positionals().empty()) throw UsageError("unexpected argument \"" + args.positionals()[0] + "\"");
  const std::string output = args.get_or("-o", args.get_or("--output", ""));
  if (output.empty()) throw UsageError("no output file (-o out.mp4)");
  if (!args.has("--model") && !(args.has("--transformer") && args.has("--vae")))
    throw UsageError("no model (--model DIR, or --transformer and --vae)");
  if (!args.has("--prompt") && !args.has("--prompt-schedule")) throw UsageError("no prompt (--prompt \"...\")");
  check_extension_args(args);
  const std::string preview = args.get_or("--preview", "");
  if (!preview.empty() && !preview.ends_with(".png"))
    throw UsageError("--preview must name a .png file, got \"" + preview + "\"");
  std::shared_ptr<reel::Communicator> world = mpi_ranks(args);
  const bool root = !world || world->rank() == 0;
  g_quiet_rank = !root;

  // Fail before the long part when the output cannot be written (format, folder, name) or an
  // input is missing; with several ranks, any rank's problem stops them all here.
  on_every_rank(world, [&] {
    if (root) reel::check_video_path(output);
    if (root && !preview.empty()) reel::check_video_path(preview);
    for (const char* input : {"--image", "--continue", "--prompt-schedule"}) {
      std::error_code ec;  // the cheap part of reading them, before the model loads
      if (auto path = args.get(input); path && !std::filesystem::exists(*path, ec))
        throw reel::Error(reel::StatusCode::not_found, std::string(input) + " " + *path + ": no such file or folder");
    }
  });

  reel::PipelineLoadOptions load;
  load.folder = args.get_or("--model", "");
  load.transformer = args.get_or("--transformer", "");
  load.transformer_2 = args.get_or("--transformer-2", "");
  load.vae = args.get_or("--vae", "");
  load.text_encoder = args.get_or("--text-encoder", "");
  load.tokenizer = args.get_or("--tokenizer", "");
  load.image_encoder = args.get_or("--image-encoder", "");
  load.preview_decoder = args.get_or("--preview-decoder", "");
  if (!load.preview_decoder.empty() && preview.empty())
    throw UsageError("--preview-decoder draws the --preview pictures: give --preview FILE.png too");
  load.device = reel::Device::parse(args.get_or("--device", "cpu"));
  load.text_encoder_device = reel::Device::parse(args.get_or("--text-encoder-device", "cpu"));
  load.attention_kernel = args.get_or("--attention", "");
  load.offload_transformer = args.has("--offload");
  load.map_weights = args.has("--map-weights");
  load.threads = args.get_int("--threads", 0);
  reel::check_thread_count(load.threads, "--threads");
  const std::string precision = args.get_or("--precision", "bf16");
  if (precision != "bf16" && precision != "f32") throw UsageError("--precision must be bf16 or f32");
  load.precision = precision == "f32" ? reel::PipelinePrecision::f32 : reel::PipelinePrecision::bf16;
  for (const std::string& l : args.get_all("--lora")) load.loras.push_back(parse_lora(l));
  const std::string lora_mode = args.get_or("--lora-mode", "merge");
  if (lora_mode != "merge" && lora_mode != "runtime") throw UsageError("--lora-mode must be merge or runtime");
  load.lora_mode = lora_mode == "runtime" ? reel::LoraMode::runtime : reel::LoraMode::merge;
  if (auto type = args.get("--weight-type")) {
    try {
      load.weight_format = reel::parse_weight_format(*type);
    } catch (const reel::Error& e) {
      throw UsageError(std::string("--weight-type: ") + e.what());
    }
  }
  if (world && load.device.type == reel::DeviceType::cuda) {
    // One GPU per rank: "--device cuda" takes the rank's local index; NCCL moves the tokens.
    if (args.get_or("--device", "").find(':') == std::string::npos)
      load.device = reel::Device::cuda(local_rank() % std::max(1, reel::cuda_device_count()));
    // NCCL takes one GPU per rank: when any rank shares one, every rank stays on MPI (through the host).
    int64_t shares[1] = {local_rank() >= reel::cuda_device_count() ? 1 : 0};
    world->all_reduce_max(shares);
    if (reel::nccl_built() && shares[0] == 0) world = reel::nccl_communicator(world, load.device.index);
  }
  load.sequence_parallel = {world, args.get_int("--ulysses", 0), args.get_int("--ring", 0)};

  reel::GenerateRequest req;
  req.prompt = args.get_or("--prompt", "");
  req.negative_prompt = args.get_or("--negative", "");
  if (auto size = args.get("--size")) parse_size(*size, req.width, req.height);
  req.frames = args.get_int("--frames", 0);
  req.steps = args.get_int("--steps", 0);
  req.guidance = args.get_float("--guidance", 0.0f);
  req.guidance_2 = args.get_float("--guidance-2", 0.0f);
  req.shift = args.get_float("--shift", 0.0f);
  req.sampler = args.get_or("--sampler", "");
  req.schedule = args.get_or("--schedule", "");
  req.seed = args.get_u64("--seed", 0);
  req.cancel = &g_cancel;
  req.previews = !preview.empty();
  if (auto cache = args.get("--step-cache"); cache && *cache == "fast") {
    req.step_cache = reel::StepCacheOptions::fast();
  } else if (cache) {
    const size_t colon = cache->find(':');
    if (colon == std::string::npos)
      throw UsageError("--step-cache must look like teacache:0.2 (method:threshold) or be fast");
    req.step_cache.method = cache->substr(0, colon);
    req.step_cache.threshold = parse_float("--step-cache threshold", cache->substr(colon + 1));
  }

  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  if (root) std::fprintf(stderr, "loading %s ...\n", load.folder.empty() ? load.transformer.c_str() : load.folder.c_str());
  const reel::Pipeline pipe = reel::Pipeline::load(load);
  const double load_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (root) std::fprintf(stderr, "model: %s\n", pipe.info().description.c_str());
  for (const std::string& n : pipe.info().notes)
    if (root) std::fprintf(stderr, "note: %s\n", n.c_str());
  if (auto image = args.get("--image")) {  // decoded only once the model is known to take one
    if (!pipe.info().accepts_image)
      throw reel::Error(reel::StatusCode::unsupported,
                        "--image: this model is text-to-video only and cannot start from an image");
    req.image = reel::read_image(*image);
  }

  // Ctrl-C, kill and a closed terminal all cancel at the next step: a streamed video keeps the
  // chunks made so far, nothing half-written is left behind. A signal during the final write
  // lets the write finish.
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) std::signal(sig, on_stop_signal);
  const int variants = args.get_int("--variants", 1);
  if (variants < 1 || variants > reel::kMaxVariants)
    throw UsageError("--variants must be between 1 and " + std::to_string(reel::kMaxVariants));
  if (variants > 1 && wants_extension(args)) throw UsageError("--variants makes clips, not endless video: drop one");
  if (world && (variants > 1 || wants_extension(args)))
    throw reel::Error(reel::StatusCode::unsupported,
                      "reel-cli writes --variants and endless video from one process only for now (the library's "
                      "generate_variants and VideoSession run on several ranks)");
  if (wants_extension(args)) return extend_command(pipe, req, args, output);
  ProgressBar bar(preview);
  if (variants > 1) return write_variants(pipe, req, variants, args.get_int("--variant-batch", 0), bar, output);
  const reel::GenerateResult out = pipe.generate(req, root ? &bar : nullptr);

  const auto t1 = Clock::now();
  on_every_rank(world, [&] {
    if (root) reel::write_video(out.video, output);  // rank 0 holds the frames
  });
  if (!root) return 0;
  const double write_seconds = std::chrono::duration<double>(Clock::now() - t1).count();

  std::fprintf(stderr, "\nsummary\n");
  std::fprintf(stderr, "  %-8s %10s\n", "load", format_seconds(load_seconds).c_str());
  double total = load_seconds + write_seconds;
  for (const reel::StageTime& s : out.timings) {
    std::fprintf(stderr, "  %-8s %10s  (%d step%s, %s/step)\n", s.stage.c_str(), format_seconds(s.seconds).c_str(),
                 s.steps, s.steps == 1 ? "" : "s", format_seconds(s.steps > 0 ? s.seconds / s.steps : 0).c_str());
    total += s.seconds;
  }
  std::fprintf(stderr, "  %-8s %10s\n  %-8s %10s\n", "write", format_seconds(write_seconds).c_str(), "total",
               format_seconds(total).c_str());
  std::fprintf(stderr, "  sampler %s, schedule %s, guidance %g, seed %llu\n", out.sampler.c_str(), out.schedule.c_str(),
               double(out.guidance), static_cast<unsigned long long>(out.seed));
  if (out.skipped_calls > 0)
    std::fprintf(stderr, "  step cache: %d transformer calls made, %d skipped\n", out.transformer_calls, out.skipped_calls);
  std::error_code ec;
  const auto bytes = std::filesystem::is_regular_file(output, ec) ? std::filesystem::file_size(output, ec) : 0;
  std::printf("wrote %s: %dx%d, %d frames, %.0f fps%s\n", output.c_str(), out.video.width, out.video.height,
              out.video.frames, out.video.fps,
              bytes ? (", " + std::to_string((bytes + 1023) / 1024) + " KiB").c_str() : "");
  return 0;
}

}  // namespace reel_cli
