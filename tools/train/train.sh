#!/usr/bin/env bash
# Retrains the demo model (models/reel-wan-demo/) from scratch: one command, seeded, on the
# CPU. Never run by the tests or CI. This is the v2 recipe (2026-12-08); the shipped model is
# still v0 (its recipe: this file's history) until a v2 run is evaluated and exported.
#
#   bash tools/train/train.sh            # venv (tools/reference/.venv), then every stage
#   FRESH=1 bash tools/train/train.sh    # forget tools/train/runs/ first
#
# The stages (each resumable: run the command again after an interruption):
#   text.py          tokenizer (SentencePiece word model) + the random tiny umT5 it starts from
#   train_vae.py     the VAE (Wan 2.2 layout), encoder and decoder together
#   train_dit.py prepare   render + encode the training clips with that encoder
#   train_dit.py train     the transformer and the text encoder
#   export.py        the diffusers folder, then make_demo_fixtures.py (tests/fixtures/pipeline/demo.*)
# The step counts are the v2 run's (stopped and resumed between stages; PyTorch's CPU kernels
# are not bit-reproducible across thread counts, so a rerun makes a model of the same recipe,
# not the same bits).
set -euo pipefail
cd "$(dirname "$0")/../.."
CLIPS="${CLIPS:-1000}"

[ -x tools/reference/.venv/bin/python ] || bash tools/reference/setup-venv.sh
PY="env PYTHONPATH=tools/train tools/reference/.venv/bin/python"
[ "${FRESH:-0}" = 1 ] && rm -rf tools/train/runs

$PY tools/train/text.py
# the VAE (v2): residual branches start at zero; MSE at lr 3e-4. Single frames first (64x64 crops:
# colour, shape and position), then 9-frame crops (3 latent frames: the temporal layers), then
# whole 33-frame clips as crops (all 9 latent frames: the causal caches over the length the
# transformer trains at; v0/v1 trained on 3 latent frames and drifted from the 4th). Crops carry
# over to the whole frame: the residual branches, the mid-block attention among them, start at
# zero. (v1's whole-frame recipe stalled at the mean colour: 14-18 dB.) The 33-frame stage runs at
# lr 1e-4: at 3e-4 its first steps undid the 9-frame stage (MSE 0.02 -> 0.15).
$PY tools/train/train_vae.py --steps 2700 --crop 64 --batch 8 --frames 1 --minutes 1e9
$PY tools/train/train_vae.py --steps 4100 --crop 64 --batch 4 --frames 9 --minutes 1e9
$PY tools/train/train_vae.py --steps "${VAE_STEPS:-6500}" --crop 64 --batch 2 --frames 33 --lr 1e-4 --minutes 1e9
$PY tools/train/vae_check.py --clips 4
$PY tools/train/train_dit.py prepare --clips "$CLIPS"
# the transformer, with the text encoder training beside it (--train-text): noise levels drawn
# with shift 2, then more at low noise (shift 0.6), where the scenes' shapes form
$PY tools/train/train_dit.py train --train-text --steps 4000 --lr 4e-4 --minutes 1e9
$PY tools/train/train_dit.py train --train-text --steps "${DIT_STEPS:-8000}" --lr 4e-4 --shift 0.6 --minutes 1e9
$PY tools/train/export.py
tools/reference/.venv/bin/python tools/reference/make_demo_fixtures.py
echo "train: models/reel-wan-demo/ and tests/fixtures/pipeline/demo.* written"
