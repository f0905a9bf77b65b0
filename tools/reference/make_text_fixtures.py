#!/usr/bin/env python3
"""Fixtures for the umT5 text encoder and its SentencePiece tokenizer (tests/text/).

Run from the repository root:
    tools/reference/.venv/bin/python tools/reference/make_text_fixtures.py

What it builds, all from fixed seeds:
  * a tiny SentencePiece unigram model (vocab 1000, T5 special ids <pad>=0, </s>=1, <unk>=2,
    byte_fallback on as in mT5's model) trained on a generated English + Chinese corpus, plus a
    tokenizer_config.json with 8 <extra_id_N> sentinels (umT5 has 384, appended above the
    SentencePiece vocabulary in reverse order, as transformers' T5 converter does);
  * sentencepiece's own ids (byte-fallback pieces kept) for the same cleaned prompts;
  * reference token ids from transformers' T5Tokenizer (the tokenizers-backed one the Wan
    pipelines use) for a list of prompts, after diffusers' own `prompt_clean` (ftfy +
    html.unescape twice + whitespace collapse), at max_length 64 and the default 512;
  * diffusers' `prompt_clean` outputs for a list of clean-up cases (entities, quotes, ...);
  * transformers' relative-position bucket for every relative position in [-300, 300];
  * a tiny random UMT5EncoderModel (d_model 64, 3 layers, 4 heads × d_kv 16, d_ff 96,
    gated-gelu) saved as a diffusers `text_encoder/` folder (sharded: index + config.json,
    f32) and as a ComfyUI-style "fp8 scaled" single file (linear weights float8_e4m3fn with
    a per-tensor `<layer>.scale_weight`, the `scaled_fp8` marker, embedding in f16);
  * its outputs on the tokenized prompts with the attention mask, as the Wan pipeline runs it.

Every weight value is exactly representable in bf16 and f16, so loading the f32 weights as
bf16 loses nothing and a bf16 run differs from f32 only by activation rounding.

Writes tests/fixtures/text/:
    tokenizer/spiece.model, tokenizer/tokenizer_config.json
    text_encoder/{config.json, model.safetensors.index.json, model-*-of-*.safetensors}
    umt5_fp8_scaled.safetensors
    cases.json        prompts, cleaned text, ids (64 and 512), clean cases, buckets
    reference.safetensors
        ids [B,64], mask [B,64]               (f32 holding integers)
        last_hidden_state [B,64,64]           UMT5EncoderModel(ids, mask) in f32
        prompt_embeds [B,64,64]               the same with rows >= seq_len set to 0 (wan.md §4.3)
        prompt_embeds_bf16 [B,64,64] (bf16)   model and inputs in bf16 (same-precision reference)
        prompt_embeds_fp8 [B,64,64]           f32 run with the dequantised fp8-scaled weights
"""
import json
import os
import random
import shutil
import tempfile

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2 as sp_pb2
import torch
from diffusers.pipelines.wan.pipeline_wan import prompt_clean
from safetensors.torch import save_file
from transformers import T5Tokenizer, UMT5Config, UMT5EncoderModel

OUT = os.path.join("tests", "fixtures", "text")
MAX_LEN = 64
EXTRA_IDS = 8
VOCAB = 1000

EN = (
    "a the an of in on at with and to from by is are was cat dog fox bird horse fish runs jumps walks "
    "flies swims over under through lazy quick brown slow sunset sunrise ocean sea mountain hill city "
    "street road neon light rain snow wind walking slowly camera pans left right close up shot wide "
    "woman man child girl boy playing guitar piano in forest river lake winter summer spring autumn "
    "golden hour cinematic high quality detailed beautiful old young red blue green yellow white black "
    "car train plane flying sky clouds night stars moon dancing happy sad portrait landscape video "
    "scene style painting photo realistic soft warm cold bright dark shadow water fire smoke dust"
).split()
ZH = (
    "一只 猫 狗 在 草地 上 奔跑 夕阳 海边 城市 街道 霓虹灯 雨 女人 男人 孩子 弹 吉他 森林 河流 雪 冬天 "
    "夏天 电影 高质量 细节 美丽 红色 蓝色 汽车 火车 鸟 天空 云 夜晚 星星 月亮 跳舞 色调艳丽 过曝 静态 "
    "细节模糊不清 字幕 风格 作品 画作 画面 静止 整体发灰 最差质量 低质量 丑陋的 残缺的 多余的手指 镜头 "
    "缓慢 移动 温暖 灯光 ， 。"
).split()


PUNCT = ['"W"', "'W'", "W & W", "<W>", "(W)", "W!", "W?", "W: W", "W; W", "W-W", "W...", "W's"]


def corpus(rng):
    lines = []
    for i in range(6000):
        if i % 3 != 2:
            words = [rng.choice(EN) for _ in range(rng.randint(4, 18))]
            s = " ".join(words)
            if rng.random() < 0.3:
                s = s.capitalize() + "."
            if rng.random() < 0.2:
                s += ", " + str(rng.randint(0, 2025))
            if rng.random() < 0.3:
                w = rng.choice(EN)
                s += " " + rng.choice(PUNCT).replace("W", w)
        else:
            s = "".join(rng.choice(ZH) for _ in range(rng.randint(3, 14)))
        lines.append(s)
    return "\n".join(lines) + "\n"


def train_tokenizer(folder):
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        text = os.path.join(tmp, "corpus.txt")
        with open(text, "w", encoding="utf-8") as f:
            f.write(corpus(random.Random(7)))
        prefix = os.path.join(tmp, "spiece")
        spm.SentencePieceTrainer.train(
            input=text, model_prefix=prefix, vocab_size=VOCAB, model_type="unigram",
            pad_id=0, eos_id=1, unk_id=2, bos_id=-1, byte_fallback=True, character_coverage=1.0,
            num_threads=1, seed_sentencepiece_size=20000, minloglevel=2)
        # Drop the temporary paths the trainer records, so the file is reproducible byte for byte.
        proto = sp_pb2.ModelProto()
        with open(prefix + ".model", "rb") as f:
            proto.ParseFromString(f.read())
        del proto.trainer_spec.input[:]
        proto.trainer_spec.model_prefix = "spiece"
        with open(os.path.join(folder, "spiece.model"), "wb") as f:
            f.write(proto.SerializeToString())
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "T5Tokenizer", "extra_ids": EXTRA_IDS, "eos_token": "</s>",
                   "unk_token": "<unk>", "pad_token": "<pad>", "model_max_length": 512}, f, indent=1)
    return T5Tokenizer.from_pretrained(folder, extra_ids=EXTRA_IDS)


LONG = " ".join(EN[(i * 7) % len(EN)] for i in range(700))  # > 512 tokens: truncated

PROMPTS = [
    "",
    "a cat runs on the grass",
    "A cinematic shot of a red fox jumping over a lazy dog at sunset, golden hour, high quality.",
    "一只猫在草地上奔跑，夕阳，高质量。",
    "镜头缓慢移动，霓虹灯 city street at night 下雨",
    "emoji 😀 test 🎬 and 🐈‍⬛ cats",
    "   leading and trailing spaces   ",
    "runs\t\tof   whitespace\n\nand\r\nnewlines \u3000 ideographic\u00a0nbsp",
    "tom &amp; jerry &lt;3 &quot;cartoon&quot;",
    "double escaped &amp;amp; and &amp;lt;tag&amp;gt;",
    "numeric &#39;quote&#39; &#x263A; &#128512; entities",
    "curly \u201cquotes\u201d and \u2018single\u2019 ones",
    "ligature \ufb01ne \ufb02ower",
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ，ｄｅｆ",
    "unknown ÆØÅ words ☃ and ✓",
    "specials </s> <pad> <unk> and <extra_id_0> <extra_id_7> <extra_id_8>",
    "x" * 40,
    "decomposed cafe\u0301 and halfwidth \uff76\uff80\uff76\uff85",
    LONG,
]

# Steps of ftfy.fix_text that reel does not reproduce (docs/text_encoder.md): mojibake repair,
# NFC, half-width katakana. Cleaned text is expected to differ for these; token ids must not
# (SentencePiece's NFKC normaliser covers NFC and width) except for real mojibake.
FTFY_ONLY_PROMPTS = ["decomposed cafe\u0301 and halfwidth \uff76\uff80\uff76\uff85"]
FTFY_ONLY_CLEAN = ["s\u00c3\u00b3 mojibake", "\u00e2\u0153\u201d No problems", "cafe\u0301", "\uff76\uff80\uff76\uff85"]

# Prompts also run through the encoder (indices into PROMPTS).
ENCODER_CASES = [0, 2, 3, 5, 15, 18]

# diffusers prompt_clean cases: named entities reel implements, numeric references, nesting.
ENTITY_NAMES = (
    "amp lt gt quot apos nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg "
    "macr deg plusmn sup2 sup3 acute micro para middot cedil sup1 ordm raquo frac14 frac12 frac34 "
    "iquest Agrave Aacute Acirc Atilde Auml Aring AElig Ccedil Egrave Eacute Ecirc Euml Igrave Iacute "
    "Icirc Iuml ETH Ntilde Ograve Oacute Ocirc Otilde Ouml times Oslash Ugrave Uacute Ucirc Uuml "
    "Yacute THORN szlig agrave aacute acirc atilde auml aring aelig ccedil egrave eacute ecirc euml "
    "igrave iacute icirc iuml eth ntilde ograve oacute ocirc otilde ouml divide oslash ugrave uacute "
    "ucirc uuml yacute thorn yuml OElig oelig Scaron scaron Yuml fnof circ tilde ensp emsp thinsp "
    "zwnj zwj lrm rlm ndash mdash lsquo rsquo sbquo ldquo rdquo bdquo dagger Dagger bull hellip "
    "permil prime Prime lsaquo rsaquo oline frasl euro trade larr uarr rarr darr harr minus lowast "
    "le ge ne asymp infin sum prod radic hearts spades clubs diams loz check cross star starf notin"
).split()

CLEAN_CASES = (
    [f"x [&{n};] y" for n in ENTITY_NAMES]  # brackets: "Ã " would look like mojibake to ftfy
    + [f"x&{n}y" for n in ("amp", "lt", "gt", "quot", "nbsp", "copy", "reg", "eacute", "hellip", "AMP")]
    + [
        "&amp;amp;amp;", "&amp;amp;amp;amp;", "a < b &amp;amp; c", "&AMP; &LT; &EACUTE; &NTILDE;",
        "&#65;&#x42;&#X43;&#0068", "&#0; &#13; &#128; &#150; &#159; &#xD800; &#x110000; &#1;",
        "&#99999999999;", "&unknownentity; & &; &# &#x; &#;", "&amp", "&notin; &not; &notit;",
        "\u201cdouble\u201d \u201e \u201f \u2018single\u2019 \u201a \u201b \u02bc",
        "\ufb00 \ufb01 \ufb02 \ufb03 \ufb04 \ufb05 \ufb06 \u0132 \u0133 \u01c4 \u01c9 \u01cc",
        "bell\x07 esc\x1b[31mred\x1b[0m del\x7f bom\ufeff obj\ufffc arabic\u206a tab\tend",
        "line\u2028sep\u2029para\x85next\r\nwin\rmac",
        "\x1c\x1d\x1e\x1f unit separators \x0b\x0c",
        "  \u3000\u00a0\u2003 spaces \u2009\u200a\u202f\u205f\u1680  ",
        "zero\u200bwidth and\u200cjoiner",
        "c1 \x80 \x91quoted\x92 \x96 \x81",
        "",
        "   ",
        "plain prompt",
    ]
)


def ids_for(tok, text, max_length):
    enc = tok([text], padding="max_length", max_length=max_length, truncation=True,
              add_special_tokens=True, return_attention_mask=True)
    return enc["input_ids"][0], enc["attention_mask"][0]


def bf16_exact(t):
    """Round to a value exact in bf16 and f16 (|x| kept inside f16's normal range)."""
    t = t.to(torch.bfloat16).to(torch.float32)
    small = t.abs() < 2.0 ** -14
    return torch.where(small, torch.zeros_like(t) + 2.0 ** -14 * torch.sign(t), t)


def build_model(vocab):
    config = UMT5Config(vocab_size=vocab, d_model=64, d_kv=16, d_ff=96, num_layers=3, num_heads=4,
                        relative_attention_num_buckets=32, relative_attention_max_distance=128,
                        feed_forward_proj="gated-gelu", dropout_rate=0.0, layer_norm_epsilon=1e-6,
                        is_encoder_decoder=False, use_cache=False, pad_token_id=0, eos_token_id=1)
    torch.manual_seed(1234)
    model = UMT5EncoderModel(config).eval()
    g = torch.Generator().manual_seed(99)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name:
                v = 1.0 + 0.2 * torch.randn(p.shape, generator=g)
            elif "relative_attention_bias" in name:
                v = 1.5 * torch.randn(p.shape, generator=g)  # strong: the bucket mapping must matter
            elif name.endswith("shared.weight") or "embed_tokens" in name:
                v = torch.randn(p.shape, generator=g)
            else:  # linear [out, in]
                v = torch.randn(p.shape, generator=g) * (1.0 / p.shape[1] ** 0.5)
            p.copy_(bf16_exact(v))
    return model


def encoder_outputs(model, ids, mask, dtype=torch.float32):
    m = model.to(dtype)
    with torch.no_grad():
        hidden = m(input_ids=ids, attention_mask=mask).last_hidden_state.float()
    lens = mask.sum(dim=1)
    zeroed = hidden.clone()
    for b, n in enumerate(lens.tolist()):
        zeroed[b, n:] = 0  # wan.md §4.3: rows >= seq_len are exactly zero
    model.to(torch.float32)
    return hidden, zeroed


def fp8_scaled_state(model):
    """ComfyUI 'scaled fp8' layout: HF names, linear weights e4m3fn / scale, scale_weight f32."""
    sd, deq = {}, {}
    for name, p in model.state_dict().items():
        if name == "encoder.embed_tokens.weight":
            continue  # tied to shared.weight
        if name.endswith((".q.weight", ".k.weight", ".v.weight", ".o.weight", ".wi_0.weight",
                          ".wi_1.weight", ".wo.weight")):
            scale = p.abs().max() / 448.0
            q = (p / scale).to(torch.float8_e4m3fn)
            sd[name] = q
            sd[name[: -len("weight")] + "scale_weight"] = scale.reshape(())
            deq[name] = q.to(torch.float32) * scale
        elif name == "shared.weight":
            sd[name] = p.to(torch.float16)
            deq[name] = p.to(torch.float16).to(torch.float32)
        else:
            sd[name] = p.clone()
            deq[name] = p.clone()
    sd["scaled_fp8"] = torch.zeros(0, dtype=torch.float8_e4m3fn)
    return sd, deq


def save_diffusers_folder(model, folder):
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder, max_shard_size="400KB", safe_serialization=True)
    names = sorted(os.listdir(folder))
    assert "model.safetensors.index.json" in names, names


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    tok = train_tokenizer(os.path.join(OUT, "tokenizer"))
    sp = spm.SentencePieceProcessor(model_file=os.path.join(OUT, "tokenizer", "spiece.model"))
    vocab = sp.get_piece_size() + EXTRA_IDS
    assert len(tok) == vocab, (len(tok), vocab)

    cases = []
    for p in PROMPTS:
        cleaned = prompt_clean(p)
        ids64, mask64 = ids_for(tok, cleaned, MAX_LEN)
        ids512, _ = ids_for(tok, cleaned, 512)
        raw = tok(p, add_special_tokens=True)["input_ids"]
        cases.append({"prompt": p, "cleaned": cleaned, "ids_64": ids64, "seq_len_64": sum(mask64),
                      "ids_512": ids512, "raw_ids": raw, "ftfy_only": p in FTFY_ONLY_PROMPTS,
                      # sentencepiece's own ids (byte pieces kept), for prompts without special tokens
                      "spm_ids": None if "<" in cleaned else sp.encode(cleaned)})
    assert any(c["seq_len_64"] == MAX_LEN for c in cases) and cases[-1]["ids_512"][-1] == 1

    clean = [{"input": s, "expected": prompt_clean(s), "ftfy_only": False} for s in CLEAN_CASES]
    clean += [{"input": s, "expected": prompt_clean(s), "ftfy_only": True} for s in FTFY_ONLY_CLEAN]

    model = build_model(vocab)
    attn = model.encoder.block[0].layer[0].SelfAttention
    rp = torch.arange(-300, 301)
    buckets = attn._relative_position_bucket(rp).tolist()

    save_diffusers_folder(model, os.path.join(OUT, "text_encoder"))
    fp8_sd, fp8_deq = fp8_scaled_state(model)
    save_file(fp8_sd, os.path.join(OUT, "umt5_fp8_scaled.safetensors"))

    ids = torch.tensor([cases[i]["ids_64"] for i in ENCODER_CASES])
    mask = (torch.arange(MAX_LEN)[None, :] < torch.tensor([cases[i]["seq_len_64"] for i in ENCODER_CASES])[:, None]).long()
    hidden, zeroed = encoder_outputs(model, ids, mask)
    _, zeroed_bf16 = encoder_outputs(model, ids, mask, torch.bfloat16)
    deq_model = build_model(vocab)
    deq_model.load_state_dict({**fp8_deq, "encoder.embed_tokens.weight": fp8_deq["shared.weight"]})
    _, zeroed_fp8 = encoder_outputs(deq_model, ids, mask)

    save_file({"ids": ids.float().contiguous(), "mask": mask.float().contiguous(),
               "last_hidden_state": hidden.contiguous(), "prompt_embeds": zeroed.contiguous(),
               "prompt_embeds_bf16": zeroed_bf16.to(torch.bfloat16).contiguous(), "prompt_embeds_fp8": zeroed_fp8.contiguous()},
              os.path.join(OUT, "reference.safetensors"))

    with open(os.path.join(OUT, "cases.json"), "w", encoding="utf-8") as f:
        json.dump({"max_length": MAX_LEN, "extra_ids": EXTRA_IDS, "spm_vocab": sp.get_piece_size(),
                   "encoder_cases": ENCODER_CASES, "tokenizer_cases": cases, "clean_cases": clean,
                   "bucket_first_position": -300, "buckets": buckets,
                   "config": {"vocab": vocab, "d_model": 64, "num_heads": 4, "d_kv": 16, "d_ff": 96,
                              "num_layers": 3, "num_buckets": 32, "max_distance": 128}},
                  f, ensure_ascii=True, indent=None)
        f.write("\n")
    total = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(OUT) for n in ns)
    print(f"wrote {OUT}: {total / 1024:.0f} KiB; vocab {vocab}; seq lens",
          [cases[i]["seq_len_64"] for i in ENCODER_CASES])


if __name__ == "__main__":
    main()
