#!/usr/bin/env bash
# reel-cli against hostile and careless use (issue 20): every case must fail fast with exit
# status 1 or 2 and a message naming the cause, block on nothing, and leave no temporary
# files; a stop signal keeps the chunks already streamed. And --preview writes its PNG.
#   bash tests/cli/test_cli_errors.sh path/to/reel-cli models/tiny-wan-t2v
set -uo pipefail
CLI="$(realpath "$1")"
MODEL="$(realpath "$2")"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
failures=0

# expect STATUS NEEDLE -- reel-cli args...: runs with a 60 s limit (a hang fails the case).
expect() {
  local want="$1" needle="$2"
  shift 3
  timeout 60 "$CLI" "$@" >out.txt 2>err.txt
  local rc=$?
  if [ "$rc" != "$want" ] || ! grep -qF -- "$needle" err.txt; then
    echo "FAIL: reel-cli $* -> status $rc (want $want), stderr:"
    sed 's/^/    /' err.txt | head -5
    echo "    (wanted: $needle)"
    failures=$((failures + 1))
  else
    echo "ok:   $needle"
  fi
}

expect 1 "--threads must be between 0" -- generate --model "$MODEL" --prompt x -o a.y4m --threads 100000
expect 2 "--size width must be an integer" -- generate --model "$MODEL" --prompt x -o a.y4m --size 4294967360x64
expect 2 "--size must look like 832x480" -- generate --model "$MODEL" --prompt x -o a.y4m --size " 64x64"
expect 2 "--frames must be an integer" -- generate --model "$MODEL" --prompt x -o a.y4m --frames 99999999999
expect 1 "the folder 'nowhere' does not exist" -- generate --model "$MODEL" --prompt x -o nowhere/a.y4m
mkdir folder.y4m
expect 1 "it is a folder" -- generate --model "$MODEL" --prompt x -o folder.y4m
expect 1 "$(printf 'n%.0s' $(seq 1 250)).y4m" -- generate --model "$MODEL" --prompt x -o "$(printf 'n%.0s' $(seq 1 250)).y4m"
expect 1 "--image nothing.png: no such file" -- generate --model "$MODEL" --prompt x -o a.y4m --image nothing.png
mkfifo fifo.png fifo.txt
expect 1 "text-to-video only" -- generate --model "$MODEL" --prompt x -o a.y4m --image fifo.png
expect 1 "the prompt schedule is not a regular file (a FIFO)" -- generate --model "$MODEL" --prompt-schedule fifo.txt -o a.y4m
expect 1 "the prompt schedule is not a regular file (a device)" -- generate --model "$MODEL" --prompt-schedule /dev/zero -o a.y4m
printf '0 a fox\n2147483647 a cat\n' > late.txt
expect 1 "late.txt line 2: chunk index '2147483647' is past" -- generate --model "$MODEL" --prompt-schedule late.txt -o a.y4m
printf '0 a fox\n1 a cat\n2 a \xff dog\n' > utf8.txt
expect 1 "utf8.txt line 3: the prompt is not valid UTF-8" -- generate --model "$MODEL" --prompt-schedule utf8.txt -o a.y4m
expect 1 "negative_prompt is not valid UTF-8" -- generate --model "$MODEL" --prompt x --negative "$(printf 'a\xff')" -o a.y4m --steps 1
expect 1 "over reel's limit" -- generate --model "$MODEL" --prompt x -o a.y4m --size 8192x8192
expect 1 "the weights file is not a regular file (a FIFO)" -- generate --model "$MODEL" --transformer fifo.txt --prompt x -o a.y4m
expect 2 "option --steps is given more than once" -- generate --model "$MODEL" --prompt x -o a.y4m --steps 2 --steps 3
expect 2 "--duration is longer than" -- generate --model "$MODEL" --prompt x -o a.y4m --duration 1e9s

# SIGTERM and SIGHUP while a streamed video is written: the chunks made so far are kept, no
# temporary file is left; a plain generate leaves nothing at all.
for sig in TERM HUP; do
  rm -f stream.y4m err.txt
  "$CLI" generate --model "$MODEL" --prompt "a fox" --size 64x48 --frames 9 --steps 4 --chunks 100000 \
    -o stream.y4m 2>err.txt &
  pid=$!
  for _ in $(seq 1 600); do grep -q "chunk 3/" err.txt 2>/dev/null && break; sleep 0.1; done
  kill -s "$sig" "$pid"
  wait "$pid"
  rc=$?
  temps=$(ls -A | grep -c 'reel-tmp' || true)
  if [ "$rc" = 130 ] && [ -s stream.y4m ] && [ "$temps" = 0 ] && grep -q "cancelled after" err.txt; then
    echo "ok:   SIG$sig keeps the streamed chunks ($(grep -c FRAME stream.y4m) frames), no temporaries"
  else
    echo "FAIL: SIG$sig: status $rc, stream.y4m $(stat -c %s stream.y4m 2>/dev/null || echo missing), $temps temporaries"
    tail -3 err.txt | sed 's/^/    /'
    failures=$((failures + 1))
  fi
done
rm -f plain.y4m err.txt
"$CLI" generate --model "$MODEL" --prompt "a fox" --size 64x48 --frames 9 --steps 10000 -o plain.y4m 2>err.txt &
pid=$!
for _ in $(seq 1 600); do grep -q "denoise" err.txt 2>/dev/null && break; sleep 0.1; done
kill -s TERM "$pid"
wait "$pid"
rc=$?
if [ "$rc" = 130 ] && [ ! -e plain.y4m ] && [ "$(ls -A | grep -c 'reel-tmp' || true)" = 0 ]; then
  echo "ok:   SIGTERM during a plain generate: status 130, nothing written"
else
  echo "FAIL: SIGTERM during a plain generate: status $rc"; failures=$((failures + 1))
fi

# --preview: refused when it cannot be a PNG; written (a PNG of 3 latent frames side by side) when it can.
expect 2 "--preview must name a .png file" -- generate --model "$MODEL" --prompt x -o a.y4m --preview p.jpg
rm -f preview.png
if timeout 120 "$CLI" generate --model "$MODEL" --prompt "a fox" --size 64x48 --frames 9 --steps 2 -o clip.y4m \
     --preview preview.png >/dev/null 2>err.txt && [ -s preview.png ] && \
   [ "$(head -c 8 preview.png | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; then
  echo "ok:   --preview writes a PNG"
else
  echo "FAIL: --preview wrote no PNG"; sed 's/^/    /' err.txt | head -5; failures=$((failures + 1))
fi

# --variants: out-of-range counts refused; two variants written under their seeds' names.
expect 2 "--variants must be between 1 and 256" -- generate --model "$MODEL" --prompt x -o a.y4m --variants 0
rm -f v_s4.y4m v_s5.y4m
if timeout 120 "$CLI" generate --model "$MODEL" --prompt "a fox" --size 64x48 --frames 5 --steps 2 --seed 4 \
     --variants 2 -o v.y4m >/dev/null 2>err.txt && [ -s v_s4.y4m ] && [ -s v_s5.y4m ] && ! cmp -s v_s4.y4m v_s5.y4m; then
  echo "ok:   --variants 2 writes v_s4.y4m and v_s5.y4m"
else
  echo "FAIL: --variants 2"; sed 's/^/    /' err.txt | head -5; failures=$((failures + 1))
fi

# --lora: bad arguments refused by name; a LoRA changes the clip, at strength 0 it does not;
# its Flux module the model has no layer for is noted; inspect describes a LoRA.
LORA="$(dirname "$MODEL")/../tests/fixtures/lora/tiny_t2v_kohya.safetensors"
expect 1 "LoRA missing.safetensors" -- generate --model "$MODEL" --prompt x -o a.y4m --lora missing.safetensors
expect 1 "one transformer" -- generate --model "$MODEL" --prompt x -o a.y4m --lora "$LORA@low"
expect 2 "--lora-mode must be merge or runtime" -- generate --model "$MODEL" --prompt x -o a.y4m --lora "$LORA" --lora-mode fused
expect 2 "--lora strength must be a number" -- generate --model "$MODEL" --prompt x -o a.y4m --lora "$LORA:1e99"
run_lora() {
  timeout 120 "$CLI" generate --model "$MODEL" --prompt "a fox" --size 64x48 --frames 5 --steps 2 --seed 4 -o "$1" \
    "${@:2}" >/dev/null 2>>err.txt
}
rm -f err.txt
if run_lora plain.y4m && run_lora lora0.y4m --lora "$LORA:0" && run_lora lora.y4m --lora "$LORA:0.8" \
   && cmp -s plain.y4m lora0.y4m && ! cmp -s plain.y4m lora.y4m && grep -q "double_blocks_0_img_attn_qkv" err.txt; then
  echo "ok:   --lora FILE:0.8 changes the clip, :0 does not, unmapped modules are noted"
else
  echo "FAIL: --lora"; sed 's/^/    /' err.txt | head -5; failures=$((failures + 1))
fi
if "$CLI" inspect "$LORA" 2>&1 | grep -q "lora: kohya layout, 5 modules"; then
  echo "ok:   inspect describes a LoRA"
else
  echo "FAIL: inspect LoRA"; "$CLI" inspect "$LORA" 2>&1 | head -5; failures=$((failures + 1))
fi

echo "$failures failure(s)"
[ "$failures" = 0 ]
