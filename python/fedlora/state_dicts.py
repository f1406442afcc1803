"""merge_state_dicts: federated clients held in memory (PEFT state dicts) merged by the CLI.

Each state dict is written as a PEFT folder (adapter_model.safetensors + adapter_config.json) in
a private temporary folder (on /dev/shm where there is one: RAM, no disk writes), the CLI merges
the folders as it merges files, and the merged factors are read back. The folder is removed
whatever happens, a Ctrl-C included. The tensors are those the file route writes, byte for
byte: the same CLI reads the same bytes.

numpy and safetensors are imported here, when called; torch only when the clients are torch
tensors (then safetensors' torch API keeps bfloat16, which numpy cannot hold).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ._run import run_json
from .api import merge_arguments
from .errors import UsageError
from .results import MergeResult

__all__ = ["merge_state_dicts"]

Config = Union[Mapping[str, Any], Any]  # a dict, or a peft.LoraConfig (anything with to_dict())


def _scratch_root() -> Optional[str]:
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def _jsonable(value: Any) -> Any:
    """A LoraConfig's to_dict() as JSON, the way PEFT's save_pretrained writes it: sets as sorted
    lists, enums by value."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(_jsonable(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "value") and type(value).__module__ != "builtins" and hasattr(type(value), "__members__"):
        return value.value
    return value


def _config_dict(config: Config, name: str) -> Dict[str, Any]:
    if isinstance(config, Mapping):
        return dict(_jsonable(config))
    if hasattr(config, "to_dict"):  # peft.LoraConfig, without importing peft
        return dict(_jsonable(config.to_dict()))
    raise UsageError(
        "usage", f"{name} must be a dict (adapter_config.json) or a peft.LoraConfig, got {type(config).__name__}"
    )


def _kind(states: Sequence[Mapping[str, Any]]) -> str:
    """'torch' or 'numpy', one for all clients (mixing them is refused by name)."""
    kinds = set()
    for index, state in enumerate(states):
        if not isinstance(state, Mapping) or not state:
            raise UsageError(
                "usage", f"states[{index}] must be a non-empty dict of tensor name -> array, got {type(state).__name__}"
            )
        for key, value in state.items():
            if not isinstance(key, str):
                raise UsageError("usage", f"states[{index}] has a key {key!r} that is not a string")
            module = type(value).__module__.split(".")[0]
            if module == "torch":
                kinds.add("torch")
            elif module == "numpy":
                kinds.add("numpy")
            else:
                raise UsageError(
                    "usage", f"states[{index}][{key!r}] is a {type(value).__name__}: give numpy arrays or torch tensors"
                )
    if len(kinds) > 1:
        raise UsageError("usage", "states mix numpy arrays and torch tensors: give one kind")
    return kinds.pop()


def _write_client(folder: Path, state: Mapping[str, Any], config: Dict[str, Any], kind: str) -> None:
    folder.mkdir()
    weights = folder / "adapter_model.safetensors"
    if kind == "torch":
        from safetensors.torch import save_file as save_torch

        save_torch(
            {k: v.detach().cpu().contiguous() for k, v in state.items()}, str(weights), metadata={"format": "pt"}
        )
    else:
        import numpy as np
        from safetensors.numpy import save_file as save_numpy

        save_numpy({k: np.ascontiguousarray(v) for k, v in state.items()}, str(weights), metadata={"format": "pt"})
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True))


def _read_merged(folder: Path, kind: str) -> Dict[str, Any]:
    weights = str(folder / "adapter_model.safetensors")
    if kind == "torch":
        from safetensors.torch import load_file as load_torch

        return dict(load_torch(weights))
    from safetensors.numpy import load_file as load_numpy

    return dict(load_numpy(weights))


def merge_state_dicts(
    states: Sequence[Mapping[str, Any]],
    *,
    config: Union[Config, Sequence[Config]],
    method: Optional[str] = None,
    weights: Optional[Sequence[float]] = None,
    samples: Optional[Sequence[float]] = None,
    keep_weights: bool = False,
    rank: Optional[int] = None,
    scope: Optional[str] = None,
    max_iterations: Optional[int] = None,
    dtype: Optional[str] = None,
    alpha: Optional[float] = None,
    no_errors: bool = False,
    allow_missing: bool = False,
    allow_different_bases: bool = False,
    scratch: Optional[str] = None,
) -> Tuple[Dict[str, Any], MergeResult]:
    """Merges clients' PEFT state dicts (`get_peft_model_state_dict(model)`: keys
    `base_model.model.<module>.lora_A.weight`, numpy arrays or torch tensors) with the CLI.

    `config` is the clients' LoRA config (a dict as in adapter_config.json, or a
    peft.LoraConfig), one for all or one per client. The options are merge()'s. Returns the
    merged state dict (same keys, the clients' dtype unless `dtype`; numpy arrays, or CPU torch
    tensors when the clients were torch) and the MergeResult, whose `adapter_config` is the
    config the merged factors need (the scale may be folded: lora_alpha = r). `scratch` is
    the folder for the temporary files (default /dev/shm when writable, else the system's)."""
    if isinstance(states, Mapping) or not isinstance(states, Sequence):
        raise UsageError("usage", f"states must be a list of state dicts (one per client), got {type(states).__name__}")
    if not states:
        raise UsageError("usage", "states is empty: give one state dict per client")
    kind = _kind(states)
    if kind == "numpy" and dtype == "bf16":
        raise UsageError("usage", "dtype bf16: numpy has no bfloat16 to return it in; give torch tensors, or f16 / f32")
    if isinstance(config, Sequence) and not isinstance(config, (str, bytes, Mapping)):
        configs = [_config_dict(c, f"config[{i}]") for i, c in enumerate(config)]
        if len(configs) != len(states):
            raise UsageError("usage", f"config has {len(configs)} entries for {len(states)} clients")
    else:
        configs = [_config_dict(config, "config")] * len(states)
    for name, values in (("--weights", weights), ("--samples", samples)):
        # The CLI's own check and message, made before any file is written.
        if values is not None and not isinstance(values, (str, bytes)) and hasattr(values, "__len__"):
            if len(values) != len(states):
                raise UsageError("usage", f"{name} has {len(values)} values for {len(states)} clients")
    root = tempfile.mkdtemp(prefix="fedlora-", dir=scratch if scratch is not None else _scratch_root())
    try:
        folder = Path(root)
        clients: List[str] = []
        for index, (state, client_config) in enumerate(zip(states, configs)):
            client = folder / f"client_{index:03d}"
            _write_client(client, state, client_config, kind)
            clients.append(str(client))
        output = folder / "merged"
        arguments = merge_arguments(
            clients, str(output), method=method, weights=weights, samples=samples, keep_weights=keep_weights,
            rank=rank, scope=scope, max_iterations=max_iterations, dtype=dtype, alpha=alpha, no_errors=no_errors,
            allow_missing=allow_missing, allow_different_bases=allow_different_bases, format="peft",
        )  # fmt: skip
        result = MergeResult.from_json(run_json(arguments, schemas=["fedlora.merge"]))
        merged = _read_merged(output, kind)
        written = json.loads((output / "adapter_config.json").read_text())
        from dataclasses import replace

        return merged, replace(result, adapter_config=written)
    finally:
        shutil.rmtree(root, ignore_errors=True)
