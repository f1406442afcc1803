#!/usr/bin/env bash
# The vocabulary of a Llama-3-sized tokenizer (bench/make_llama3_tokenizer.py): `fedlora convert`
# of the tiny model beside it (vocabulary included) against llama.cpp's converter path in Python
# (AutoTokenizer + gguf-py SpecialVocab + GGUFWriter, fixtures/generate_tokenizers.py), in one run;
# the two vocabularies are checked equal.   bench/bench_vocab.sh FEDLORA_BIN [OUTDIR=bench/out]
set -euo pipefail
FEDLORA=$1
OUT=${2:-bench/out}
HERE=$(cd "$(dirname "$0")" && pwd)
python3 "$HERE/make_llama3_tokenizer.py" "$OUT/llama3-tokenizer"
TIMEF=$(mktemp)
trap 'rm -f "$TIMEF" "$OUT/vocab-ours.gguf" "$OUT/vocab-ref.gguf"' EXIT
/usr/bin/time -f "%e %M" -o "$TIMEF" "$FEDLORA" convert "$OUT/llama3-tokenizer" "$OUT/vocab-ours.gguf" --quiet 2>/dev/null
read -r OURS OURS_KB < "$TIMEF"
/usr/bin/time -f "%e %M" -o "$TIMEF" python3 -c "
import sys; sys.path.insert(0, '$HERE/../fixtures')
from pathlib import Path
import generate_tokenizers as g
g.write_reference(Path('$OUT/llama3-tokenizer'), Path('$OUT/vocab-ref.gguf'))" 2>/dev/null
read -r REF REF_KB < "$TIMEF"
SAME=$(python3 -c "
import gguf
def kv(p): return {k: f.contents() for k, f in gguf.GGUFReader(p).fields.items() if k.startswith('tokenizer.')}
print('equal' if kv('$OUT/vocab-ours.gguf') == kv('$OUT/vocab-ref.gguf') else 'DIFFERENT')")
echo "vocabulary, 128,256 tokens + 280,000 merges (Llama 3 sizes): vocabularies $SAME"
printf "  fedlora convert             %6.2f s  %5d MB\n" "$OURS" $((OURS_KB / 1024))
printf "  converter path (Python)     %6.2f s  %5d MB   fedlora %.1fx faster\n" "$REF" $((REF_KB / 1024)) "$(echo "$REF / $OURS" | bc -l)"
