#!/usr/bin/env python3
"""The FedAvg a practitioner writes with torch today (the baseline of bench/bench_merge.sh):
load each client's adapter_model.safetensors, accumulate every tensor in fp32 with uniform
weights, save in the clients' dtype. No error report.

Usage: python3 bench/torch_fedavg.py OUT.safetensors CLIENT_DIR...
"""
import sys

import torch
from safetensors.torch import load_file, save_file

torch.set_num_threads(2)
out, clients = sys.argv[1], sys.argv[2:]
total, dtypes = {}, {}
for client in clients:
    for name, tensor in load_file(f"{client}/adapter_model.safetensors").items():
        dtypes[name] = tensor.dtype
        if name in total:
            total[name] += tensor.float()
        else:
            total[name] = tensor.float()
save_file({name: (value / len(clients)).to(dtypes[name]) for name, value in total.items()}, out)
