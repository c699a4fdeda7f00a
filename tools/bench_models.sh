#!/usr/bin/env bash
# End-to-end speed on TinyLlama-1.1B-shaped models: makes a random-weight F16 model once
# (the real model's shapes and 32000-token vocabulary), quantizes it to Q4_0, Q8_0 and
# Q4_K_M, and runs `llama-cxx bench` on each, as llama-bench is run for the peer numbers.
# F16_AS_BF16 in TYPES runs the F16 model again with --f16-as-bf16; BF16 converts it.
#
#   tools/bench_models.sh [CACHE_DIR]        (default: ../models-cache next to the repo)
# Environment: LCX_BIN (default build/llama-cxx), THREADS (2), PP (512), TG (128), REPS (3),
#              TYPES ("F16 F16_AS_BF16 Q4_0 Q8_0 Q4_K_M"), BENCH_ARGS (extra flags, e.g.
#              --json).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${1:-$root/../models-cache}
bin=${LCX_BIN:-$root/build/llama-cxx}
threads=${THREADS:-2}
pp=${PP:-512}
tg=${TG:-128}
reps=${REPS:-3}
types=${TYPES:-F16 F16_AS_BF16 Q4_0 Q8_0 Q4_K_M}
vocab=${VOCAB:-$root/../shared/data/vocab/ggml-vocab-llama-spm.gguf}

[ -x "$bin" ] || { echo "no llama-cxx binary at $bin (build it, or set LCX_BIN)" >&2; exit 1; }
mkdir -p "$cache"
f16="$cache/tinyllama-1.1b-synthetic-F16.gguf"
if [ ! -s "$f16" ]; then
    vocab_arg=()
    if [ -f "$vocab" ]; then vocab_arg=(--vocab "$vocab"); else echo "note: $vocab not found, using a built-in vocabulary" >&2; fi
    "$bin" make-model --shape tinyllama-1.1b "${vocab_arg[@]}" --type F16 -t "$threads" -o "$f16"
fi
for t in $types; do
    [ "$t" = F16 ] || [ "$t" = F16_AS_BF16 ] && continue
    q="$cache/tinyllama-1.1b-synthetic-$t.gguf"
    [ -s "$q" ] || "$bin" quantize -t "$threads" "$f16" "$q" "$t"
done

echo "# $(date -u '+%Y-%m-%d %H:%M UTC') $(uname -n), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $bin bench -t $threads -p $pp -n $tg -r $reps ${BENCH_ARGS:-}"
for t in $types; do
    flags=()
    if [ "$t" = F16_AS_BF16 ]; then t=F16; flags=(--f16-as-bf16); fi
    "$bin" bench -m "$cache/tinyllama-1.1b-synthetic-$t.gguf" -t "$threads" -p "$pp" -n "$tg" \
        -r "$reps" "${flags[@]}" ${BENCH_ARGS:-}
done
