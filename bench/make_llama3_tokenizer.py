#!/usr/bin/env python3
"""A model folder with a Llama-3-sized byte-level BPE tokenizer (128,000 tokens, 280,000 merges,
256 special tokens; vocab_size 128256) around the tiny fixture model, for timing vocabularies:

    python3 bench/make_llama3_tokenizer.py OUTDIR
Random tokens (deterministic): the counts are Llama 3's, the file size close to its 9 MB. Nothing here is committed."""
import json
import random
import shutil
import sys
from pathlib import Path

from tokenizers import pre_tokenizers

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
src = Path(__file__).resolve().parent.parent / "fixtures/tokenizers/llama_bpe"
tokenizer = json.loads((src / "tokenizer.json").read_text())
random.seed(0)
alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
vocab = {c: i for i, c in enumerate(alphabet)}
stems = list(alphabet)
merges = []
while len(vocab) < 128000:
    a, b = random.choice(stems), random.choice(alphabet)
    if a + b in vocab:
        continue
    vocab[a + b] = len(vocab)
    if len(a + b) < 9:  # tokens of a few characters, as in real vocabularies
        stems.append(a + b)
    merges.append([a, b])
merges += [merges[i % len(merges)] for i in range(280000 - len(merges))]
tokenizer["model"]["vocab"], tokenizer["model"]["merges"] = vocab, merges
names = ["<|begin_of_text|>", "<|end_of_text|>"] + [f"<|reserved_special_token_{i}|>" for i in range(254)]
tokenizer["added_tokens"] = [{"id": 128000 + i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                              "normalized": False, "special": True} for i, s in enumerate(names)]
(out / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False))
config = json.loads((src / "config.json").read_text())
config.update(vocab_size=128256, bos_token_id=128000, eos_token_id=128001)
(out / "config.json").write_text(json.dumps(config))
for name in ("tokenizer_config.json", "model.safetensors"):
    shutil.copy(src / name, out / name)
