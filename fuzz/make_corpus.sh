#!/usr/bin/env bash
# Seeds fuzz/corpus/TARGET/ from the committed fixtures (run from the repository root; the
# corpora are committed, so this is only needed when fixtures change).
set -euo pipefail
cd "$(dirname "$0")/.."
c=fuzz/corpus
rm -rf "$c"; mkdir -p "$c"/{safetensors,gguf,json,sentencepiece,pytorch,tokenizer-json,sharded-index,adapter-config,module-pattern,llama-config}
cp fixtures/safetensors/*.safetensors fixtures/malformed/st_*.safetensors "$c/safetensors/"
cp fixtures/pytorch/views.bin fixtures/pytorch/evil_eval.bin fixtures/pytorch/transposed.bin fixtures/pytorch/legacy.bin "$c/pytorch/"
cp fixtures/gguf/*.gguf fixtures/malformed/gg_*.gguf "$c/gguf/"
for f in fixtures/adapters/client_{a,pattern,rslora}/adapter_config.json fixtures/tokenizers/llama_bpe/{config,tokenizer_config}.json \
         fixtures/malformed/cases.json fixtures/adapters/bad/truncated_config/adapter_config.json; do
  cp "$f" "$c/json/$(echo "$f" | tr / _)"
done
cp fixtures/tokenizers/llama_spm/tokenizer.model "$c/sentencepiece/"
cp fixtures/tokenizers/llama_bpe/tokenizer.json "$c/tokenizer-json/"
cp fixtures/sharded/model.safetensors.index.json "$c/sharded-index/real.json"
printf '{"metadata":{"total_size":16},"weight_map":{"model.layers.0.self_attn.q_proj.weight":"model-00001-of-00001.safetensors"}}' > "$c/sharded-index/one.json"
for f in fixtures/adapters/client_{a,pattern,rslora,bias,embed}/adapter_config.json fixtures/adapters/bad/{rank_mismatch,pattern_mismatch}/adapter_config.json; do
  cp "$f" "$c/adapter-config/$(echo "$f" | tr / _)"
done
printf 'q_proj\nmodel.layers.0.self_attn.q_proj\nmodel.layers.0.mlp.up_proj\n' > "$c/module-pattern/suffix"
printf 'layers\\.[0-9]+\\.(q|k)_proj\nmodel.layers.12.self_attn.q_proj\n' > "$c/module-pattern/regex"
printf '(.*)*x\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaay\n' > "$c/module-pattern/catastrophic"
printf '[^.]{2,4}_proj$\nmodel.layers.0.self_attn.k_proj\n' > "$c/module-pattern/class"
cp fixtures/tokenizers/llama_bpe/config.json "$c/llama-config/llama_bpe.json"
cp fixtures/tokenizers/llama_spm/config.json "$c/llama-config/llama_spm.json"
cp fixtures/adapters/base/config.json "$c/llama-config/base.json"
du -sh "$c"
