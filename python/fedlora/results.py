"""Typed results of the CLI's JSON documents (docs/json.md).

Each class reads the fields this package knows; every object keeps the JSON it came from in
`raw`, so fields a newer fedlora adds within the schema version are reachable before this
package names them. Numbers that do not exist
(`||T|| = 0`, errors not computed) are None, as in the JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple, Union

__all__ = [
    "Problem",
    "PlannedFile",
    "MergeLayer",
    "MergeResult",
    "AdapterLayer",
    "AdapterInspection",
    "ClientsLayer",
    "ModelErrors",
    "Provenance",
    "ClientsInspection",
    "TensorInfo",
    "CheckpointFile",
    "FileInspection",
    "InspectResult",
    "TensorCheck",
    "VerifiedFile",
    "VerifyResult",
    "ConvertResult",
]

Raw = Dict[str, Any]


def _float(value: Any) -> Optional[float]:
    return None if value is None else float(value)


def _int(value: Any) -> Optional[int]:
    return None if value is None else int(value)


def _strings(value: Any) -> Tuple[str, ...]:
    return tuple(str(v) for v in value or ())


def _floats(value: Any) -> Tuple[float, ...]:
    return tuple(float(v) for v in value or ())


def _object(value: Any) -> Raw:
    return dict(value) if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class Problem:
    """One problem `verify` or `inspect` found: its stable code and message (`module`, `global`
    and `offset` where the document gives them)."""

    code: str
    message: str
    module: Optional[str] = None
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> "Problem":
        return cls(str(item.get("code", "")), str(item.get("message", "")), item.get("module"), dict(item))


@dataclass(frozen=True)
class PlannedFile:
    """A file a `--dry-run` would write: its tensors, dtypes, bytes of tensor data, and whether
    it replaces a file there now."""

    path: str
    tensors: int
    dtypes: Dict[str, int]
    bytes: int
    replaces: bool
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> "PlannedFile":
        return cls(
            str(item["path"]),
            int(item.get("tensors", 0)),
            {str(k): int(v) for k, v in _object(item.get("dtypes")).items()},
            int(item.get("bytes", 0)),
            bool(item.get("replaces", False)),
            dict(item),
        )


@dataclass(frozen=True)
class MergeLayer:
    """One layer of a merge: name, shape `(d, k)`, written rank, `||T||`, relative error
    `||T - Bh Ah|| / ||T||`, the rank-r floor, why an svd layer has fewer components
    (`rank_limit`), and for flora-na the coefficients `p`, `q` and `iterations`. In a dry run
    only name, shape and rank (`rank_is_upper_bound`) are known."""

    name: str
    shape: Tuple[int, int]
    rank: int
    norm_T: Optional[float] = None
    relative_error: Optional[float] = None
    floor: Optional[float] = None
    rank_limit: Optional[str] = None
    p: Optional[Tuple[float, ...]] = None
    q: Optional[Tuple[float, ...]] = None
    iterations: Optional[int] = None
    rank_is_upper_bound: bool = False
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> "MergeLayer":
        shape = tuple(int(v) for v in item.get("shape", ()))
        return cls(
            name=str(item["name"]),
            shape=(shape[0], shape[1]) if len(shape) == 2 else (0, 0),
            rank=int(item["rank"]),
            norm_T=_float(item.get("norm_T")),
            relative_error=_float(item.get("relative_error")),
            floor=_float(item.get("floor")),
            rank_limit=item.get("rank_limit"),
            p=_floats(item["p"]) if item.get("p") is not None else None,
            q=_floats(item["q"]) if item.get("q") is not None else None,
            iterations=_int(item.get("iterations")),
            rank_is_upper_bound=bool(item.get("rank_is_upper_bound", False)),
            raw=dict(item),
        )


@dataclass(frozen=True)
class MergeResult:
    """What `fedlora merge --json` reports (`fedlora.merge/1`), or its `--dry-run` plan
    (`dry_run` True, `planned` the files it would write, `layers` their ranks)."""

    schema: str
    warnings: Tuple[str, ...]
    output: Optional[str]
    adapter_output: Optional[str]
    method: Optional[str]
    rank: Optional[int]
    clients: Tuple[str, ...]
    weights: Tuple[float, ...]
    model_error: Optional[float]
    model_floor: Optional[float]
    layers: Tuple[MergeLayer, ...]
    dry_run: bool = False
    planned: Tuple[PlannedFile, ...] = ()
    # The output dtype and why: "clients" (they agree), "widest" (they differ), "given", "base"
    # (a merged base keeps each tensor's dtype: dtype None).
    dtype: Optional[str] = None
    dtype_source: Optional[str] = None
    # merge_state_dicts only: the adapter_config.json fedlora wrote beside the merged factors
    # (other rules than FedAvg of one shared config fold the scale: lora_alpha = r). Load the
    # merged state dict with this config, not the clients'.
    adapter_config: Optional[Dict[str, Any]] = None
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> "MergeResult":
        model = _object(document.get("model"))
        return cls(
            schema=str(document["schema"]),
            warnings=_strings(document.get("warnings")),
            output=document.get("output"),
            adapter_output=document.get("adapter_output"),
            method=document.get("method"),
            rank=_int(document.get("rank")),
            clients=_strings(document.get("clients")),
            weights=_floats(document.get("weights")),
            model_error=_float(model.get("relative_error")),
            model_floor=_float(model.get("floor")),
            layers=tuple(MergeLayer.from_json(item) for item in document.get("layers") or ()),
            dry_run=bool(document.get("dry_run", False)),
            planned=tuple(PlannedFile.from_json(item) for item in document.get("files") or ())
            if document.get("dry_run")
            else (),
            dtype=document.get("dtype"),
            dtype_source=document.get("dtype_source"),
            raw=dict(document),
        )


@dataclass(frozen=True)
class AdapterLayer:
    """One module of `inspect` of one adapter: `d`, `k`, `r`, alpha, scale, dtype, the norms,
    the leading singular values (`sigmas`: sigma_1 ... sigma_K, None past the rank), numerical
    and stable rank, `below_eps`, NaN/Inf counts and flags."""

    module: str
    d: Optional[int]
    k: Optional[int]
    r: Optional[int]
    alpha: Optional[float]
    scale: Optional[float]
    dtype: Optional[str]
    norm_A: Optional[float]
    norm_B: Optional[float]
    norm_bias: Optional[float]
    norm_sBA: Optional[float]
    sigmas: Tuple[Optional[float], ...]
    numerical_rank: Optional[int]
    stable_rank: Optional[float]
    below_eps: Optional[int]
    nan: Optional[int]
    inf: Optional[int]
    flags: Tuple[str, ...]
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> "AdapterLayer":
        count = sum(1 for key in row if key.startswith("sigma_") and key[6:].isdigit())
        flags = row.get("flags") or ""
        return cls(
            module=str(row["module"]),
            d=_int(row.get("d")),
            k=_int(row.get("k")),
            r=_int(row.get("r")),
            alpha=_float(row.get("alpha")),
            scale=_float(row.get("scale")),
            dtype=row.get("dtype"),
            norm_A=_float(row.get("norm_A")),
            norm_B=_float(row.get("norm_B")),
            norm_bias=_float(row.get("norm_bias")),
            norm_sBA=_float(row.get("norm_sBA")),
            sigmas=tuple(_float(row.get(f"sigma_{i}")) for i in range(1, count + 1)),
            numerical_rank=_int(row.get("numerical_rank")),
            stable_rank=_float(row.get("stable_rank")),
            below_eps=_int(row.get("below_eps")),
            nan=_int(row.get("nan")),
            inf=_int(row.get("inf")),
            flags=tuple(f.strip() for f in str(flags).split(",") if f.strip()),
            raw=dict(row),
        )


@dataclass(frozen=True)
class AdapterInspection:
    """`inspect` of one adapter (`fedlora.inspect.adapter/1`)."""

    schema: str
    ok: bool
    warnings: Tuple[str, ...]
    path: str
    format: Optional[str]
    parameters: Optional[int]
    bytes: Optional[int]
    modules: Optional[int]
    target_modules: Tuple[str, ...]
    config: Optional[Dict[str, Any]]
    flagged: Tuple[Dict[str, Any], ...]
    problems: Tuple[Problem, ...]
    plot: Optional[str]
    layers: Tuple[AdapterLayer, ...]
    error: Optional[Problem] = None
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> "AdapterInspection":
        return cls(
            schema=str(document["schema"]),
            ok=bool(document.get("ok")),
            warnings=_strings(document.get("warnings")),
            path=str(document.get("path", "")),
            format=document.get("format"),
            parameters=_int(document.get("parameters")),
            bytes=_int(document.get("bytes")),
            modules=_int(document.get("modules")),
            target_modules=_strings(document.get("target_modules")),
            config=dict(document["config"]) if isinstance(document.get("config"), Mapping) else None,
            flagged=tuple(dict(item) for item in document.get("flagged") or ()),
            problems=tuple(Problem.from_json(item) for item in document.get("problems") or ()),
            plot=document.get("plot"),
            layers=tuple(AdapterLayer.from_json(row) for row in document.get("layers") or ()),
            error=Problem.from_json(document["error"]) if isinstance(document.get("error"), Mapping) else None,
            raw=dict(document),
        )


@dataclass(frozen=True)
class ClientsLayer:
    """One layer of `inspect` of clients: `||T||`, each client's cosine to `T`, and the relative
    errors of FedAvg and FLoRA-NA beside the floor (and the audited adapter's, `against`)."""

    module: str
    d: Optional[int]
    k: Optional[int]
    norm_T: Optional[float]
    cosines: Tuple[Optional[float], ...]
    fedavg: Optional[float]
    flora_na: Optional[float]
    floor: Optional[float]
    against: Optional[float]
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> "ClientsLayer":
        count = sum(1 for key in row if key.startswith("cos_") and key[4:].isdigit())
        return cls(
            module=str(row["module"]),
            d=_int(row.get("d")),
            k=_int(row.get("k")),
            norm_T=_float(row.get("norm_T")),
            cosines=tuple(_float(row.get(f"cos_{i}")) for i in range(1, count + 1)),
            fedavg=_float(row.get("fedavg")),
            flora_na=_float(row.get("flora_na", row.get("flora-na"))),
            floor=_float(row.get("floor")),
            against=_float(row.get("against")),
            raw=dict(row),
        )


@dataclass(frozen=True)
class ModelErrors:
    """Model-level relative errors (or tolerances) of the rules: fedavg, flora_na, floor, and
    the audited adapter's (`against`) where there is one."""

    fedavg: Optional[float]
    flora_na: Optional[float]
    floor: Optional[float]
    against: Optional[float] = None

    @classmethod
    def from_json(cls, item: Any) -> "ModelErrors":
        values = _object(item)
        # Older binaries write the key `flora-na`; docs/json.md names it `flora_na`.
        return cls(
            _float(values.get("fedavg")),
            _float(values.get("flora_na", values.get("flora-na"))),
            _float(values.get("floor")),
            _float(values.get("against")),
        )


@dataclass(frozen=True)
class Provenance:
    """What an audited adapter records of its making against what the audit was given: the
    recorded method, rank and clients; the given clients found in the record (`matched`) and
    not (`unknown`); recorded clients not given (`missing`); whether the weights and the
    expected rule's method agree (None: not compared); the disagreements (`clients`, `weights`,
    `method`) and those `waive` let pass. `recorded` is False for an adapter fedlora did not write."""

    recorded: bool
    method: Optional[str]
    rank: Optional[int]
    version: Optional[str]
    clients: Tuple[str, ...]
    matched: Tuple[str, ...]
    missing: Tuple[str, ...]
    unknown: Tuple[str, ...]
    weights_recorded: Optional[Tuple[float, ...]]
    weights_match: Optional[bool]
    method_matches: Optional[bool]
    mismatches: Tuple[str, ...]
    waived: Tuple[str, ...]
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> "Provenance":
        weights = item.get("weights_recorded")
        return cls(
            recorded=bool(item.get("recorded")),
            method=item.get("method"),
            rank=_int(item.get("rank")),
            version=item.get("version"),
            clients=_strings(item.get("clients")),
            matched=_strings(item.get("matched")),
            missing=_strings(item.get("missing")),
            unknown=_strings(item.get("unknown")),
            weights_recorded=None if weights is None else _floats(weights),
            weights_match=item.get("weights_match"),
            method_matches=item.get("method_matches"),
            mismatches=_strings(item.get("mismatches")),
            waived=_strings(item.get("waived")),
            raw=dict(item),
        )


@dataclass(frozen=True)
class ClientsInspection:
    """`inspect` of several adapters (`fedlora.inspect.clients/1`), with `--against` an audit:
    the audited adapter's recorded `provenance` compared with what was given, then the verdict,
    the tolerances and whether `--expect` was met."""

    schema: str
    ok: bool
    warnings: Tuple[str, ...]
    clients: Tuple[str, ...]
    weights: Tuple[float, ...]
    weights_source: Optional[str]
    against: Optional[str]
    model: ModelErrors
    verdict: Optional[str]
    verdict_code: Optional[str]
    tolerances: Optional[ModelErrors]
    expect: Optional[str]
    expectation_met: Optional[bool]
    plot: Optional[str]
    layers: Tuple[ClientsLayer, ...]
    provenance: Optional[Provenance] = None
    client_names: Tuple[str, ...] = ()
    error: Optional[Problem] = None
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> "ClientsInspection":
        tolerances = document.get("tolerances")
        provenance = document.get("provenance")
        return cls(
            schema=str(document["schema"]),
            ok=bool(document.get("ok")),
            warnings=_strings(document.get("warnings")),
            clients=_strings(document.get("clients")),
            weights=_floats(document.get("weights")),
            weights_source=document.get("weights_source"),
            against=document.get("against"),
            model=ModelErrors.from_json(document.get("model")),
            verdict=document.get("verdict"),
            verdict_code=document.get("verdict_code"),
            tolerances=ModelErrors.from_json(tolerances) if isinstance(tolerances, Mapping) else None,
            expect=document.get("expect"),
            expectation_met=document.get("expectation_met"),
            plot=document.get("plot"),
            layers=tuple(ClientsLayer.from_json(row) for row in document.get("layers") or ()),
            provenance=Provenance.from_json(provenance) if isinstance(provenance, Mapping) else None,
            client_names=_strings(document.get("client_names")),
            error=Problem.from_json(document["error"]) if isinstance(document.get("error"), Mapping) else None,
            raw=dict(document),
        )


@dataclass(frozen=True)
class TensorInfo:
    """A tensor of the header view: name, dtype, shape (PyTorch order), file, offset, bytes."""

    name: str
    dtype: str
    shape: Tuple[int, ...]
    file: Optional[str]
    offset: Optional[int]
    bytes: Optional[int]
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> "TensorInfo":
        return cls(
            str(item["name"]),
            str(item.get("dtype", "")),
            tuple(int(v) for v in item.get("shape") or ()),
            item.get("file"),
            _int(item.get("offset")),
            _int(item.get("bytes")),
            dict(item),
        )


@dataclass(frozen=True)
class CheckpointFile:
    """One checkpoint of the header view (`fedlora.inspect.file/1`)."""

    path: str
    resolved_path: Optional[str]
    format: Optional[str]
    version: Optional[int]
    alignment: Optional[int]
    files: Tuple[str, ...]
    tensor_count: Optional[int]
    parameter_count: Optional[int]
    data_bytes: Optional[int]
    file_bytes: Optional[int]
    dtypes: Dict[str, Any]
    metadata: Dict[str, Any]
    tensors: Optional[Tuple[TensorInfo, ...]]
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> "CheckpointFile":
        tensors = item.get("tensors")
        return cls(
            path=str(item["path"]),
            resolved_path=item.get("resolved_path"),
            format=item.get("format"),
            version=_int(item.get("version")),
            alignment=_int(item.get("alignment")),
            files=_strings(item.get("files")),
            tensor_count=_int(item.get("tensor_count")),
            parameter_count=_int(item.get("parameter_count")),
            data_bytes=_int(item.get("data_bytes")),
            file_bytes=_int(item.get("file_bytes")),
            dtypes=_object(item.get("dtypes")),
            metadata=_object(item.get("metadata")),
            tensors=tuple(TensorInfo.from_json(t) for t in tensors) if tensors is not None else None,
            raw=dict(item),
        )


@dataclass(frozen=True)
class FileInspection:
    """`inspect` of checkpoints, or with `file=True` / `tensors=True`: header facts only."""

    schema: str
    ok: bool
    warnings: Tuple[str, ...]
    files: Tuple[CheckpointFile, ...]
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> "FileInspection":
        return cls(
            str(document["schema"]),
            bool(document.get("ok")),
            _strings(document.get("warnings")),
            tuple(CheckpointFile.from_json(item) for item in document.get("files") or ()),
            dict(document),
        )


InspectResult = Union[AdapterInspection, ClientsInspection, FileInspection]


@dataclass(frozen=True)
class TensorCheck:
    """A tensor `verify --data` read: CRC-32 of its bytes on disk, NaN/Inf counts."""

    name: str
    dtype: str
    crc32: str
    nan: int
    inf: int
    values_checked: int
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> "TensorCheck":
        return cls(
            str(item["name"]),
            str(item.get("dtype", "")),
            str(item.get("crc32", "")),
            int(item.get("nan") or 0),
            int(item.get("inf") or 0),
            int(item.get("values_checked") or 0),
            dict(item),
        )


@dataclass(frozen=True)
class VerifiedFile:
    """One path `verify` checked: valid or not, its problems, and with `data=True` its tensors."""

    path: str
    valid: bool
    tensor_count: Optional[int]
    problems: Tuple[Problem, ...]
    tensors: Optional[Tuple[TensorCheck, ...]]
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, item: Mapping[str, Any]) -> "VerifiedFile":
        tensors = item.get("tensors")
        return cls(
            str(item["path"]),
            bool(item.get("valid")),
            _int(item.get("tensor_count")),
            tuple(Problem.from_json(p) for p in item.get("problems") or ()),
            tuple(TensorCheck.from_json(t) for t in tensors) if tensors is not None else None,
            dict(item),
        )


@dataclass(frozen=True)
class VerifyResult:
    """`fedlora verify --json` (`fedlora.verify/1`)."""

    schema: str
    ok: bool
    warnings: Tuple[str, ...]
    valid: bool
    files: Tuple[VerifiedFile, ...]
    error: Optional[Problem] = None
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> "VerifyResult":
        return cls(
            str(document["schema"]),
            bool(document.get("ok")),
            _strings(document.get("warnings")),
            bool(document.get("valid")),
            tuple(VerifiedFile.from_json(item) for item in document.get("files") or ()),
            Problem.from_json(document["error"]) if isinstance(document.get("error"), Mapping) else None,
            dict(document),
        )


@dataclass(frozen=True)
class ConvertResult:
    """`fedlora convert --json` (`fedlora.convert/1`): what was written, or with `dry_run` the
    plan (`planned`)."""

    schema: str
    warnings: Tuple[str, ...]
    input: Optional[str]
    output: Optional[str]
    format: Optional[str]
    files: Tuple[str, ...]
    tensors: Optional[int]
    bytes: Optional[int]
    dtypes: Dict[str, int]
    dry_run: bool = False
    planned: Tuple[PlannedFile, ...] = ()
    # The output dtype and why: "clients" (they agree), "widest" (they differ), "given", "base"
    # (a merged base keeps each tensor's dtype: dtype None).
    dtype: Optional[str] = None
    dtype_source: Optional[str] = None
    raw: Raw = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> "ConvertResult":
        dry = bool(document.get("dry_run", False))
        files = document.get("files") or ()
        return cls(
            schema=str(document["schema"]),
            warnings=_strings(document.get("warnings")),
            input=document.get("input"),
            output=document.get("output"),
            format=document.get("format"),
            files=() if dry else _strings(files),
            tensors=_int(document.get("tensors")),
            bytes=_int(document.get("bytes")),
            dtypes={str(k): int(v) for k, v in _object(document.get("dtypes")).items()},
            dry_run=dry,
            planned=tuple(PlannedFile.from_json(item) for item in files) if dry else (),
            raw=dict(document),
        )


def inspect_result(document: Mapping[str, Any]) -> InspectResult:
    """The inspect result class its schema names."""
    schema = str(document.get("schema", ""))
    if schema.startswith("fedlora.inspect.adapter/"):
        return AdapterInspection.from_json(document)
    if schema.startswith("fedlora.inspect.clients/"):
        return ClientsInspection.from_json(document)
    return FileInspection.from_json(document)
