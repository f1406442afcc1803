"""fedlora.flower: a Flower strategy (Message API, flwr >= 1.22) whose LoRA aggregation is fedlora's.

    from fedlora.flower import FedloraStrategy
    strategy = FedloraStrategy(lora_config, method="flora-na", fraction_evaluate=0.0)
    result = strategy.start(grid=grid, initial_arrays=ArrayRecord(state), num_rounds=10)

A subclass of Flower's `FedAvg`: sampling, `start()`, evaluation and configuration are Flower's.
`aggregate_train` splits each reply's ArrayRecord into the LoRA factors (PEFT state-dict keys,
`<module>.lora_A.weight` / `.lora_B.weight`, as `get_peft_model_state_dict` gives them), which
`fedlora.merge_state_dicts` aggregates with the chosen rule weighted by the replies'
`num-examples` (Flower's `weighted_by_key`), and the other entries (heads, norms), which Flower's
own `aggregate_arrayrecords` averages as FedAvg does.

What clients receive means exactly what fedlora computed, under the clients' LoRA config (their
model has a fixed `r` and `lora_alpha`): fedlora folds the scale for every rule but FedAvg of one
shared config (`lora_alpha = r`, scale 1), so the strategy multiplies each `lora_B` by
`output scale / client scale`. When that ratio is a power of two (alpha / r = 1, 2, 4, ...;
the multiplication is then exact), `client scale * B` equals fedlora merge's `output scale * B`
bit for bit, and `lora_A` is fedlora's unchanged. `svd` runs with `--rank` = the clients' r, and
a layer with fewer components (`rank_limit`) is zero-padded back to r (same product).

Rules: `flora-na` (default; `scope` layer|model), `fedavg` (= `fedit`), `svd`, and `fedex`, which
changes the base: the global ArrayRecord then carries each adapted module's base weight as
`<module>.base_layer.weight` (PEFT's name in the wrapped model); the server folds the residual
`T - Bh_avg Ah_avg` into those weights and sends them back with the FedAvg adapter, so the
clients' base + adapter is `W0 + T`. Clients need not send base weights back (any they send are
ignored: the server owns them). `exact` (no adapter left to train) and `stack` (the rank grows
every round) are refused by name.

A reply whose ArrayRecord differs from the model the server sent (missing or extra keys, other
shapes, ranks or dtypes, non-finite values) or whose `num-examples` is missing or not a finite
non-negative number is never averaged in: with `on_invalid="exclude"` (default) it is dropped
with a logged reason (node id, key), with `on_invalid="fail"` the round fails with Flower's
`InconsistentMessageReplies` (the ServerApp then exits, as FedAvg's own checks make it).

Each round's MetricRecord holds the clients' aggregated train metrics and fedlora's report:
`fedlora-error` (model-level `||T - Bh Ah|| / ||T||` of the adapter sent; for fedex its FedAvg
adapter, whereas base + adapter is exact), `fedlora-floor` (rank-r SVD floor),
`fedlora-fedavg-error` (FedAvg's error on the same replies, `compare_fedavg`), `fedlora-merge-seconds`
(the fedlora call, temporary files included), `fedlora-compare-seconds`, `fedlora-aggregate-seconds`
(all of aggregate_train), `fedlora-replies`, `fedlora-excluded`, `fedlora-bytes-in` (the replies'
ArrayRecords), `fedlora-bytes-out` (the aggregate, sent to each client), `fedlora-layer-errors`.
The whole MergeResult of the last round is `strategy.last_result`.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
import time
from collections import Counter
from logging import INFO, WARNING
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.common.logger import log
from flwr.serverapp import Grid
from flwr.serverapp.exception import AggregationError, InconsistentMessageReplies
from flwr.serverapp.strategy import FedAvg
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords, validate_message_reply_consistency

from .api import merge
from .errors import FedloraError
from .results import MergeResult
from .state_dicts import merge_state_dicts

__all__ = ["FedloraStrategy", "lora_key", "BASE_SUFFIX"]

_LORA = re.compile(r"^(?P<module>.+)\.lora_(?P<factor>A|B)\.weight$")
BASE_SUFFIX = ".base_layer.weight"
_PEFT_PREFIX = "base_model.model."
_RULES = {"flora-na": "flora-na", "fedavg": "fedavg", "fedit": "fedavg", "svd": "svd", "fedex": "fedex"}
_REFUSED = {
    "exact": "exact folds the whole update into the base and leaves no adapter for the clients to train "
    "(use fedex: the FedAvg adapter plus the exact residual in the base)",
    "stack": "stack returns rank sum(r_u), which grows every round while the clients' models have a fixed r",
}
Signature = Tuple[Tuple[str, Tuple[int, ...], str], ...]


def lora_key(key: str) -> Optional[Tuple[str, str]]:
    """(module, 'A' or 'B') of a PEFT LoRA factor key, else None."""
    match = _LORA.match(key)
    return (match["module"], match["factor"]) if match else None


def _config(config: Any) -> Dict[str, Any]:
    if isinstance(config, Mapping):
        return dict(config)
    if hasattr(config, "to_dict"):
        from .state_dicts import _config_dict  # the package's own LoraConfig -> JSON conversion

        return _config_dict(config, "lora_config")
    raise TypeError(f"lora_config must be a dict (adapter_config.json) or a peft.LoraConfig, got {type(config).__name__}")


def _scale(config: Mapping[str, Any]) -> float:
    """alpha / r (alpha / sqrt(r) with rsLoRA) of a config without per-module patterns."""
    r, alpha = float(config["r"]), float(config.get("lora_alpha", config["r"]))
    return alpha / math.sqrt(r) if config.get("use_rslora") else alpha / r


class FedloraStrategy(FedAvg):
    """Flower's FedAvg whose LoRA entries are aggregated by fedlora (see the module's text).

    `lora_config`: the clients' LoRA config (dict as adapter_config.json, or peft.LoraConfig; one
    `r` and `lora_alpha` for all modules). `method`: flora-na | fedavg | fedit | svd | fedex.
    `scope`, `max_iterations`: FLoRA-NA's. `on_invalid`: "exclude" | "fail". `compare_fedavg`:
    also run FedAvg on the same replies for `fedlora-fedavg-error`. Other keywords: FedAvg's."""

    def __init__(
        self,
        lora_config: Any,
        *,
        method: str = "flora-na",
        scope: Optional[str] = None,
        max_iterations: Optional[int] = None,
        on_invalid: str = "exclude",
        compare_fedavg: bool = True,
        scratch: Optional[str] = None,
        **fedavg: Any,
    ) -> None:
        super().__init__(**fedavg)
        if method in _REFUSED:
            raise ValueError(f"method {method!r} is not available in the federated loop: {_REFUSED[method]}")
        if method not in _RULES:
            raise ValueError(f"method must be one of {', '.join(_RULES)}, got {method!r}")
        if scope is not None and _RULES[method] != "flora-na":
            raise ValueError(f"scope is FLoRA-NA's option; method {method!r} takes none")
        if on_invalid not in ("exclude", "fail"):
            raise ValueError(f"on_invalid must be 'exclude' or 'fail', got {on_invalid!r}")
        self.lora_config = _config(lora_config)
        for key in ("rank_pattern", "alpha_pattern"):
            if self.lora_config.get(key):
                raise ValueError(f"lora_config has a {key}: the strategy needs one r and lora_alpha for all modules")
        if self.lora_config.get("use_dora"):
            raise ValueError("lora_config uses DoRA, which fedlora refuses to merge (magnitude vectors)")
        self.rank = int(self.lora_config["r"])
        self.client_scale = _scale(self.lora_config)
        self.method = _RULES[method]
        self.scope = scope
        self.max_iterations = max_iterations
        self.on_invalid = on_invalid
        self.compare_fedavg = compare_fedavg and self.method not in ("fedavg", "fedex")  # theirs is FedAvg's
        self.scratch = scratch
        self.last_result: Optional[MergeResult] = None
        self._sent: Optional[ArrayRecord] = None  # the global model of the round being trained

    def summary(self) -> None:
        super().summary()
        log(INFO, "\t└──> fedlora: method %s, scope %s, r %d, scale %g, invalid replies: %s",
            self.method, self.scope or "layer", self.rank, self.client_scale, self.on_invalid)  # fmt: skip

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """FedAvg's, keeping the model sent: replies are checked against it, fedex updates its base."""
        self._sent = arrays
        return super().configure_train(server_round, arrays, config, grid)

    # --- aggregation -------------------------------------------------------------------------

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> Tuple[Optional[ArrayRecord], Optional[MetricRecord]]:
        start = time.perf_counter()
        valid, _ = self._check_and_log_replies(list(replies), is_train=True, validate=False)
        kept = self._screen(valid)
        if not kept:
            log(WARNING, "aggregate_train: no valid reply in round %d, the global model is unchanged", server_round)
            return None, None
        contents = [message.content for message in kept]
        validate_message_reply_consistency(contents, self.weighted_by_key, check_arrayrecord=True)
        records = [next(iter(content.array_records.values())) for content in contents]
        samples = [float(next(iter(c.metric_records.values()))[self.weighted_by_key]) for c in contents]
        order = [key for key in records[0].keys() if not key.endswith(BASE_SUFFIX)]
        lora = [key for key in order if lora_key(key)]
        other = [key for key in order if not lora_key(key)]

        states = [{key: record[key].numpy() for key in lora} for record in records]
        merged, base, metrics = self._merge(states, samples)
        arrays: Dict[str, Array] = {key: Array(np.ascontiguousarray(merged[key])) for key in lora}
        if other:
            # Flower's own FedAvg arithmetic for the entries that are not LoRA factors.
            subset = [
                RecordDict({"arrays": ArrayRecord({key: record[key] for key in other}), "metrics": content.metric_records[next(iter(content.metric_records))]})
                for record, content in zip(records, contents)
            ]  # fmt: skip
            averaged = aggregate_arrayrecords(subset, self.weighted_by_key)
            arrays.update({key: averaged[key] for key in other})
        for key, value in base.items():
            arrays[key] = Array(np.ascontiguousarray(value))
        if self.method != "fedex" and self._sent is not None:  # base weights the server sent stay as they are
            arrays.update({key: self._sent[key] for key in self._sent.keys() if key.endswith(BASE_SUFFIX)})
        aggregate = ArrayRecord(arrays)

        train = self.train_metrics_aggr_fn(contents, self.weighted_by_key)
        for key, value in metrics.items():
            train[key] = value
        train["fedlora-replies"] = len(valid)
        train["fedlora-excluded"] = len(valid) - len(kept)
        train["fedlora-bytes-in"] = sum(record.count_bytes() for record in records)
        train["fedlora-bytes-out"] = aggregate.count_bytes()
        train["fedlora-aggregate-seconds"] = time.perf_counter() - start
        return aggregate, train

    def _merge(
        self, states: List[Dict[str, np.ndarray]], samples: List[float]
    ) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray], Dict[str, Any]]:
        """(LoRA factors for the clients, new base weights (fedex), metrics)."""
        base: Dict[str, np.ndarray] = {}
        start = time.perf_counter()
        try:
            if self.method == "fedex":
                merged, base, result = self._fedex(states, samples)
            else:
                merged, result = merge_state_dicts(
                    states, config=self.lora_config, method=self.method, samples=samples,
                    rank=self.rank if self.method == "svd" else None, scope=self.scope,
                    max_iterations=self.max_iterations, scratch=self.scratch,
                )  # fmt: skip
            seconds = time.perf_counter() - start
            compare, compare_seconds = None, 0.0
            if self.compare_fedavg:
                begin = time.perf_counter()
                _, compare = merge_state_dicts(states, config=self.lora_config, method="fedavg", samples=samples, scratch=self.scratch)
                compare_seconds = time.perf_counter() - begin
        except FedloraError as error:
            raise AggregationError(f"fedlora merge failed ({error.code}): {error.message}") from error
        self.last_result = result
        out = self._for_clients(merged, result, states[0])
        metrics: Dict[str, Any] = {"fedlora-merge-seconds": seconds}
        if result.model_error is not None:
            metrics["fedlora-error"] = result.model_error
        if result.model_floor is not None:
            metrics["fedlora-floor"] = result.model_floor
        fedavg_error = result.model_error if self.method in ("fedavg", "fedex") else (compare and compare.model_error)
        if fedavg_error is not None:
            metrics["fedlora-fedavg-error"] = fedavg_error
        if compare is not None:
            metrics["fedlora-compare-seconds"] = compare_seconds
        errors = [layer.relative_error for layer in result.layers]
        if errors and all(e is not None for e in errors):
            metrics["fedlora-layer-errors"] = [float(e) for e in errors]  # type: ignore[misc]
        return out, base, metrics

    def _for_clients(
        self, merged: Dict[str, np.ndarray], result: MergeResult, reference: Mapping[str, np.ndarray]
    ) -> Dict[str, np.ndarray]:
        """fedlora's factors under the clients' config: B times output scale / client scale, and
        svd layers with fewer than r components zero-padded to r."""
        written = result.adapter_config or self.lora_config
        scales = {_scale(written)}
        ranks = dict(written.get("rank_pattern") or {})
        alphas = dict(written.get("alpha_pattern") or {})
        for name in set(ranks) | set(alphas):
            r = float(ranks.get(name, written["r"]))
            alpha = float(alphas.get(name, written.get("lora_alpha", written["r"])))
            scales.add(alpha / math.sqrt(r) if written.get("use_rslora") else alpha / r)
        if len(scales) != 1:
            raise AggregationError(f"fedlora wrote modules with different scales {sorted(scales)}: not one config")
        ratio = np.float64(scales.pop() / self.client_scale)
        out: Dict[str, np.ndarray] = {}
        for key, want in reference.items():
            value = merged[key]
            module, factor = lora_key(key) or ("", "")
            if factor == "B" and ratio != 1.0:
                value = (value.astype(np.float64) * ratio).astype(value.dtype) if value.dtype != np.float64 else value * ratio
            if value.shape != want.shape:  # an svd layer of lower rank: zero rows of A, columns of B
                padded = np.zeros(want.shape, dtype=value.dtype)
                padded[tuple(slice(0, n) for n in value.shape)] = value
                value = padded
            out[key] = value
        return out

    def _fedex(
        self, states: List[Dict[str, np.ndarray]], samples: List[float]
    ) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray], MergeResult]:
        """`fedlora merge --method fedex --base`: the FedAvg adapter and the base weights of the
        adapted modules carrying the residual, through files in a temporary folder."""
        from safetensors.numpy import load_file, save_file

        if self._sent is None:
            raise AggregationError("fedex needs the global model sent this round (configure_train was not called)")
        modules = sorted({lora_key(key)[0] for key in states[0]})  # type: ignore[index]
        missing = [m + BASE_SUFFIX for m in modules if m + BASE_SUFFIX not in self._sent.keys()]
        if missing:
            raise AggregationError(
                f"fedex needs each adapted module's base weight in the global ArrayRecord as "
                f"<module>{BASE_SUFFIX}; missing {missing[0]} (and {len(missing) - 1} more)"
            )
        names = {m: (m[len(_PEFT_PREFIX) :] if m.startswith(_PEFT_PREFIX) else m) + ".weight" for m in modules}
        root = Path(tempfile.mkdtemp(prefix="fedlora-fedex-", dir=self.scratch or _shm()))
        try:
            clients = []
            for index, state in enumerate(states):
                folder = root / f"client_{index:03d}"
                folder.mkdir()
                save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
                (folder / "adapter_config.json").write_text(json.dumps(self.lora_config))
                clients.append(str(folder))
            save_file({names[m]: np.ascontiguousarray(self._sent[m + BASE_SUFFIX].numpy()) for m in modules}, str(root / "base.safetensors"))
            result = merge(
                clients, str(root / "merged.safetensors"), method="fedex", samples=samples,
                base=str(root / "base.safetensors"), adapter_output=str(root / "adapter"),
            )  # fmt: skip
            adapter = load_file(str(root / "adapter" / "adapter_model.safetensors"))
            written = json.loads((root / "adapter" / "adapter_config.json").read_text())
            new_base = load_file(str(root / "merged.safetensors"))
        finally:
            shutil.rmtree(root, ignore_errors=True)
        from dataclasses import replace

        base = {m + BASE_SUFFIX: new_base[names[m]] for m in modules}
        return adapter, base, replace(result, adapter_config=written)

    # --- validation --------------------------------------------------------------------------

    def _reference(self, messages: Sequence[Message]) -> Signature:
        """The structure replies must have: the model sent (base weights aside), else (when
        aggregate_train is called without configure_train) the one most replies share."""
        if self._sent is not None:
            return _signature(self._sent)
        shapes = Counter(_signature(next(iter(m.content.array_records.values()))) for m in messages if len(m.content.array_records) == 1)
        return shapes.most_common(1)[0][0] if shapes else ()

    def _screen(self, messages: List[Message]) -> List[Message]:
        reference = self._reference(messages)
        kept = []
        for message in messages:
            reason = _problem(message.content, reference, self.weighted_by_key)
            if reason is None:
                kept.append(message)
                continue
            text = f"reply from node {message.metadata.src_node_id}: {reason}"
            if self.on_invalid == "fail":
                raise InconsistentMessageReplies(reason=f"{text} (on_invalid='fail')")
            log(WARNING, "aggregate_train: excluded %s", text)
        return kept


def _shm() -> Optional[str]:
    return "/dev/shm" if Path("/dev/shm").is_dir() else None


def _signature(record: ArrayRecord) -> Signature:
    return tuple((k, tuple(int(n) for n in v.shape), str(v.dtype)) for k, v in record.items() if not k.endswith(BASE_SUFFIX))


def _problem(content: RecordDict, reference: Signature, weight_key: str) -> Optional[str]:
    """Why a reply cannot be aggregated, or None."""
    if len(content.array_records) != 1 or len(content.metric_records) != 1:
        return f"{len(content.array_records)} ArrayRecords and {len(content.metric_records)} MetricRecords (want one of each)"
    weight = next(iter(content.metric_records.values())).get(weight_key)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
        return f"'{weight_key}' is {weight!r}, not a finite number >= 0"
    record = next(iter(content.array_records.values()))
    want = {key: (shape, dtype) for key, shape, dtype in reference}
    have = {key: (shape, dtype) for key, shape, dtype in _signature(record)}
    missing = [key for key in want if key not in have]
    extra = [key for key in have if key not in want]
    if missing:
        return f"missing {len(missing)} key(s), first {missing[0]}"
    if extra:
        return f"{len(extra)} unexpected key(s), first {extra[0]}"
    for key, (shape, dtype) in want.items():
        if have[key] != (shape, dtype):
            return f"{key} is {have[key][1]} {list(have[key][0])}, the global model's is {dtype} {list(shape)}"
    for key in want:
        value = record[key].numpy()
        if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
            return f"{key} has {int((~np.isfinite(value)).sum())} non-finite value(s)"
    return None
