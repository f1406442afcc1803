"""fedlora for Python: the fedlora CLI (LoRA adapter merges for federated fine-tuning) driven
through its JSON contract, with typed results.

    import fedlora
    result = fedlora.merge(["client_a", "client_b"], "merged", method="flora-na", samples=[100, 300])
    print(result.model_error, result.layers[0].p)

The numerics are the binary's: this package builds command lines, runs them and parses the
documents (docs/json.md). `merge_state_dicts` merges PEFT state dicts held in memory.
"""

from __future__ import annotations

from .errors import (
    BinaryNotFoundError,
    CommandError,
    FedloraError,
    ProtocolError,
    SignalError,
    UsageError,
)

# typing is not imported at run time (mypy reads any TYPE_CHECKING as True).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ._binary import find_binary
    from .api import build_info, cli, convert, inspect, merge, verify, version
    from .results import (
        AdapterInspection,
        AdapterLayer,
        CheckpointFile,
        ClientsInspection,
        ClientsLayer,
        Provenance,
        ConvertResult,
        FileInspection,
        InspectResult,
        MergeLayer,
        MergeResult,
        ModelErrors,
        PlannedFile,
        Problem,
        TensorCheck,
        TensorInfo,
        VerifiedFile,
        VerifyResult,
    )
    from .state_dicts import merge_state_dicts

try:
    from ._version import __version__  # type: ignore[import-not-found,unused-ignore]  # written into the wheel
except ImportError:  # a source checkout
    __version__ = "0+unknown"

__all__ = [
    "merge",
    "inspect",
    "verify",
    "convert",
    "merge_state_dicts",
    "cli",
    "version",
    "build_info",
    "find_binary",
    "FedloraError",
    "UsageError",
    "CommandError",
    "BinaryNotFoundError",
    "ProtocolError",
    "SignalError",
    "MergeResult",
    "MergeLayer",
    "PlannedFile",
    "AdapterInspection",
    "AdapterLayer",
    "ClientsInspection",
    "ClientsLayer",
    "Provenance",
    "ModelErrors",
    "FileInspection",
    "CheckpointFile",
    "TensorInfo",
    "InspectResult",
    "VerifyResult",
    "VerifiedFile",
    "TensorCheck",
    "ConvertResult",
    "Problem",
]


# Where each public name lives. They load on first use (PEP 562): `import fedlora` then costs
# the exceptions alone, not subprocess, json, dataclasses or numpy.
_LAZY = {
    **{name: "api" for name in ("merge", "inspect", "verify", "convert", "cli", "version", "build_info")},
    "merge_state_dicts": "state_dicts",
    "find_binary": "_binary",
    **{
        name: "results"
        for name in (
            "MergeResult",
            "MergeLayer",
            "PlannedFile",
            "AdapterInspection",
            "AdapterLayer",
            "ClientsInspection",
            "ClientsLayer",
            "Provenance",
            "ModelErrors",
            "FileInspection",
            "CheckpointFile",
            "TensorInfo",
            "InspectResult",
            "VerifyResult",
            "VerifiedFile",
            "TensorCheck",
            "ConvertResult",
            "Problem",
        )
    },  # fmt: skip
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fedlora' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> "list[str]":
    return sorted(set(globals()) | set(_LAZY))
