#!/usr/bin/env python3
"""Stage 0: the demo model's tokenizer and text encoder, and the caption embeddings.

The tokenizer is a SentencePiece word model trained on the caption vocabulary (byte
fallback on, so any text tokenizes); the text encoder is a tiny transformers UMT5EncoderModel
with its random initial weights, frozen: the transformer learns to read its output. Both are
written in the diffusers folder layout under runs/text/, and the embeddings of every caption
(and of the empty prompt, used for classifier-free guidance) exactly as diffusers' WanPipeline
computes them (the encoder's output for the real tokens) into runs/text/embeds.pt.

    python tools/train/text.py
"""
from __future__ import annotations

import json
import os
import tempfile

import sentencepiece as spm
import torch
from transformers import T5Tokenizer, UMT5Config, UMT5EncoderModel

import common
import scenes

EXTRA_IDS = 8
OUT = os.path.join(common.RUNS, "text")


def train_tokenizer(folder):
    captions = [s.caption() for s in scenes.all_scenes()]
    with tempfile.TemporaryDirectory() as tmp:
        corpus = os.path.join(tmp, "captions.txt")
        with open(corpus, "w") as f:
            f.write("\n".join(captions * 4) + "\n")
        prefix = os.path.join(tmp, "spiece")
        spm.SentencePieceTrainer.train(
            input=corpus, model_prefix=prefix, vocab_size=320, model_type="word", pad_id=0, eos_id=1,
            unk_id=2, bos_id=-1, byte_fallback=True, character_coverage=1.0, hard_vocab_limit=False,
            num_threads=1, minloglevel=2)
        os.makedirs(folder, exist_ok=True)
        os.replace(prefix + ".model", os.path.join(folder, "spiece.model"))
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "T5Tokenizer", "extra_ids": EXTRA_IDS, "eos_token": "</s>",
                   "unk_token": "<unk>", "pad_token": "<pad>", "model_max_length": 512}, f, indent=1)
    return T5Tokenizer.from_pretrained(folder)


def make_text_encoder(vocab):
    torch.manual_seed(4242)
    return UMT5EncoderModel(UMT5Config(vocab_size=vocab, **common.TEXT_ENCODER_CONFIG)).eval()


@torch.no_grad()
def encode(tokenizer, encoder, prompts):
    """What WanPipeline._get_t5_prompt_embeds gives, without its zero padding: a list of [n, D]."""
    out = []
    for p in prompts:
        ids = tokenizer([p], padding="max_length", max_length=512, truncation=True, add_special_tokens=True,
                        return_attention_mask=True, return_tensors="pt")
        h = encoder(ids.input_ids, ids.attention_mask).last_hidden_state[0]
        out.append(h[: int(ids.attention_mask.sum())].clone())
    return out


def main():
    common.setup_torch()
    tok = train_tokenizer(os.path.join(OUT, "tokenizer"))
    sp_size = spm.SentencePieceProcessor(model_file=os.path.join(OUT, "tokenizer", "spiece.model")).get_piece_size()
    encoder = make_text_encoder(sp_size + EXTRA_IDS)
    encoder.save_pretrained(os.path.join(OUT, "text_encoder"))
    prompts = [""] + [s.caption() for s in scenes.all_scenes()]
    embeds = encode(tok, encoder, prompts)
    longest = max(e.shape[0] for e in embeds)
    assert longest <= common.MAX_TEXT_TOKENS, longest
    torch.save({"prompts": prompts, "embeds": embeds}, os.path.join(OUT, "embeds.pt"))
    print(f"tokenizer: {sp_size} pieces; {len(prompts)} prompts, up to {longest} tokens; "
          f"e.g. {tok.tokenize(prompts[1])}")


if __name__ == "__main__":
    main()
