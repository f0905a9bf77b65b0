#!/usr/bin/env bash
# reel-cli under mpirun (issue 19): two ranks write exactly the video one process writes (the
# demo model's 4 heads split all-Ulysses, which computes every attention row as one process);
# only rank 0 reports; an output that cannot be written, an input missing, or a split that
# cannot work ends every rank with the same status and no hang; --ring without mpirun is a
# usage error.
#   bash tests/cli/test_cli_mpi.sh path/to/reel-cli models/reel-wan-demo
set -uo pipefail
CLI="$(realpath "$1")"
MODEL="$(realpath "$2")"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
MPIRUN=(timeout 300 mpirun -np 2 --oversubscribe --bind-to none)
ARGS=(generate --model "$MODEL" --prompt "a blue ball bouncing over a white background" --size 64x64 --frames 5
      --steps 3 --seed 5 --threads 1)
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

timeout 300 "$CLI" "${ARGS[@]}" -o one.y4m >/dev/null 2>&1 || fail "one process"
"${MPIRUN[@]}" "$CLI" "${ARGS[@]}" -o two.y4m >out.txt 2>err.txt || fail "2 ranks: status $?: $(tail -3 err.txt)"
cmp -s one.y4m two.y4m && echo "ok:   2 ranks write the one-process video" || fail "2 ranks: the video differs"
[ "$(grep -c '^wrote ' out.txt)" = 1 ] && echo "ok:   one rank reports" || fail "wrote lines: $(grep -c '^wrote ' out.txt)"
grep -q "2 ranks (mpi, ulysses 2" err.txt && echo "ok:   the model line names the split" || fail "no split in: $(grep model: err.txt)"

# expect STATUS NEEDLE -- args: every rank ends with STATUS (mpirun returns it), rank 0 says NEEDLE.
expect() {
  local want="$1" needle="$2"
  shift 3
  "${MPIRUN[@]}" "$CLI" "$@" >out.txt 2>err.txt
  local rc=$?
  if [ "$rc" != "$want" ] || ! grep -qF -- "$needle" err.txt; then
    fail "mpirun reel-cli $* -> status $rc (want $want): $(grep -v '^ *$' err.txt | head -3)"
  else
    echo "ok:   $needle"
  fi
}
expect 1 "the folder 'nowhere' does not exist" -- "${ARGS[@]}" -o nowhere/a.y4m
expect 1 "--image missing.png: no such file" -- "${ARGS[@]}" -o a.y4m --image missing.png
expect 1 "ulysses 3" -- "${ARGS[@]}" -o a.y4m --ulysses 3
[ ! -e a.y4m ] && echo "ok:   no output after a failure" || fail "a.y4m written"

timeout 60 "$CLI" "${ARGS[@]}" -o a.y4m --ring 2 >/dev/null 2>err.txt
rc=$?
[ "$rc" = 2 ] && grep -q "mpirun -np N" err.txt && echo "ok:   --ring without mpirun" || fail "--ring alone: status $rc"

echo "$failures failure(s)"
[ "$failures" = 0 ]
