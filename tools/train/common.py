"""What the training scripts share: the model configurations, the frame size, the paths."""
from __future__ import annotations

import os

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# checkpoints: tools/train/runs (ignored by git), or REEL_TRAIN_RUNS (e.g. outside the work tree)
RUNS = os.environ.get("REEL_TRAIN_RUNS") or os.path.join(ROOT, "tools", "train", "runs")
MODEL_DIR = os.path.join(ROOT, "models", "reel-wan-demo")

WIDTH, HEIGHT = 256, 160           # the frame size everything is trained at
TRAIN_FRAMES = 33                  # clips rendered for the transformer: 9 latent frames
WINDOW_LATENTS = 5                 # the transformer trains on windows of 5 latent frames (17 frames)
FPS = 16
MAX_TEXT_TOKENS = 32               # captions are short; the pipelines pad to 512 anyway

VAE_CONFIG = dict(base_dim=16, decoder_base_dim=16, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                  attn_scales=[], temperal_downsample=[False, True, True], is_residual=True, in_channels=12,
                  out_channels=12, patch_size=2, scale_factor_spatial=16, scale_factor_temporal=4, dropout=0.0)

TRANSFORMER_CONFIG = dict(patch_size=(1, 2, 2), num_attention_heads=4, attention_head_dim=32, in_channels=48,
                          out_channels=48, text_dim=64, freq_dim=256, ffn_dim=512, num_layers=6,
                          cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)

TEXT_ENCODER_CONFIG = dict(d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
                           relative_attention_num_buckets=32, relative_attention_max_distance=128,
                           feed_forward_proj="gated-gelu", dropout_rate=0.0, layer_norm_epsilon=1e-6,
                           is_encoder_decoder=False, use_cache=False, pad_token_id=0, eos_token_id=1)

SCHEDULER_CONFIG = dict(num_train_timesteps=1000, prediction_type="flow_prediction", use_flow_sigmas=True,
                        flow_shift=2.0, solver_order=2, solver_type="bh2", predict_x0=True,
                        lower_order_final=True, final_sigmas_type="zero")


def setup_torch(threads: int | None = None):
    torch.set_num_threads(threads or max(1, os.cpu_count() or 1))


def to_model_range(frames_u8: np.ndarray) -> torch.Tensor:
    """uint8 [T, H, W, 3] -> float [3, T, H, W] in [-1, 1], what the VAE takes."""
    x = torch.from_numpy(frames_u8).float().div(127.5).sub(1.0)
    return x.permute(3, 0, 1, 2).contiguous()


def save_checkpoint(path: str, **state):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)
