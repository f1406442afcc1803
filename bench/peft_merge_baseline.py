#!/usr/bin/env python3
"""PEFT baseline for `fedlora merge --base`: load, merge_and_unload, save_pretrained.

Usage: python3 bench/peft_merge_baseline.py BASE_DIR ADAPTER_DIR OUT_DIR [--dtype bfloat16]

LlamaForCausalLM.from_pretrained(BASE_DIR, dtype) -> PeftModel.from_pretrained(ADAPTER_DIR) ->
merge_and_unload() -> save_pretrained(OUT_DIR) (safetensors). Prints the wall time of each step
and the total (the process start and imports are not included; time the whole process for that).
Note: PEFT upcasts BF16 adapter weights to fp32 (autocast_adapter_dtype) and merges with
W += delta_fp32, i.e. one rounding to BF16, like fedlora.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base")
    ap.add_argument("adapter")
    ap.add_argument("out")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    a = ap.parse_args(argv)
    import torch
    from peft import PeftModel
    from transformers import LlamaForCausalLM
    from transformers.utils import logging
    logging.set_verbosity_error()
    logging.disable_progress_bar()

    t = [time.perf_counter()]
    model = LlamaForCausalLM.from_pretrained(a.base, dtype=getattr(torch, a.dtype))
    t.append(time.perf_counter())
    model = PeftModel.from_pretrained(model, a.adapter)
    t.append(time.perf_counter())
    model = model.merge_and_unload()
    t.append(time.perf_counter())
    model.save_pretrained(a.out)
    t.append(time.perf_counter())
    steps = ["load base", "load adapter", "merge_and_unload", "save_pretrained"]
    print("  ".join(f"{s} {t[i + 1] - t[i]:.2f} s" for i, s in enumerate(steps)))
    print(f"total {t[-1] - t[0]:.2f} s")


if __name__ == "__main__":
    sys.exit(main())
