#!/usr/bin/env python3
"""Writes a .bin twin of each PEFT client folder: torch.save of the same state dict (what
PEFT's save_pretrained(safe_serialization=False) writes), beside its adapter_config.json.

Usage: python3 bench/make_bin_twins.py OUTDIR CLIENT_DIR...
"""
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

out = Path(sys.argv[1])
for client in map(Path, sys.argv[2:]):
    target = out / client.name
    if (target / "adapter_model.bin").exists():
        continue
    target.mkdir(parents=True, exist_ok=True)
    torch.save(load_file(str(client / "adapter_model.safetensors")), target / "adapter_model.bin")
    shutil.copy(client / "adapter_config.json", target / "adapter_config.json")
