"""merge, inspect, verify, convert: the four commands, every option a keyword, one typed result.

Each call builds the command line (types checked here, everything else judged by the CLI), runs
`fedlora ... --json` and parses its document. Options follow the CLI's names with `_` for `-`;
None and False leave an option out, so the CLI's defaults and refusals apply unchanged. The
CLI's presentation flags (`--csv`, `--markdown`, `--checksums`, `--quiet`) have no meaning
beside the JSON document: `fedlora.cli()` runs any command line as it is.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import _args as a
from ._run import run_json, run_text
from .errors import UsageError
from .results import ConvertResult, InspectResult, MergeResult, VerifyResult, inspect_result

__all__ = ["merge", "inspect", "verify", "convert", "cli", "version", "build_info"]


def _weighting(arguments: List[str], weights: Optional[Sequence[float]], samples: Optional[Sequence[float]]) -> None:
    a.option(arguments, "--weights", None if weights is None else a.number_list(weights, "weights"))
    a.option(arguments, "--samples", None if samples is None else a.number_list(samples, "samples"))


def merge_arguments(
    clients: Optional[Sequence[a.PathLike]],
    output: Optional[a.PathLike],
    *,
    method: Optional[str] = None,
    weights: Optional[Sequence[float]] = None,
    samples: Optional[Sequence[float]] = None,
    keep_weights: bool = False,
    rank: Optional[int] = None,
    scope: Optional[str] = None,
    max_iterations: Optional[int] = None,
    format: Optional[str] = None,
    dtype: Optional[str] = None,
    alpha: Optional[float] = None,
    base: Optional[a.PathLike] = None,
    shard_size: Optional[str] = None,
    adapter_output: Optional[a.PathLike] = None,
    base_config: Optional[a.PathLike] = None,
    recipe: Optional[a.PathLike] = None,
    no_errors: bool = False,
    dry_run: bool = False,
    allow_missing: bool = False,
    allow_different_bases: bool = False,
) -> List[str]:
    """The `fedlora merge` command line of `merge()`'s arguments (without `--json`)."""
    arguments = ["merge"]
    a.option(arguments, "--output", None if output is None else a.path(output, "output"))
    a.option(arguments, "--method", None if method is None else a.text(method, "method"))
    _weighting(arguments, weights, samples)
    a.flag(arguments, "--keep-weights", keep_weights)
    a.option(arguments, "--rank", None if rank is None else str(a.integer(rank, "rank")))
    a.option(arguments, "--scope", None if scope is None else a.text(scope, "scope"))
    a.option(
        arguments,
        "--max-iterations",
        None if max_iterations is None else str(a.integer(max_iterations, "max_iterations")),
    )
    a.option(arguments, "--format", None if format is None else a.text(format, "format"))
    a.option(arguments, "--dtype", None if dtype is None else a.text(dtype, "dtype"))
    a.option(arguments, "--alpha", None if alpha is None else repr(a.real(alpha, "alpha")))
    a.option(arguments, "--base", None if base is None else a.path(base, "base"))
    a.option(arguments, "--shard-size", None if shard_size is None else a.text(shard_size, "shard_size"))
    a.option(
        arguments, "--adapter-output", None if adapter_output is None else a.path(adapter_output, "adapter_output")
    )
    a.option(arguments, "--base-config", None if base_config is None else a.path(base_config, "base_config"))
    a.option(arguments, "--recipe", None if recipe is None else a.path(recipe, "recipe"))
    a.flag(arguments, "--no-errors", no_errors)
    a.flag(arguments, "--dry-run", dry_run)
    a.flag(arguments, "--allow-missing", allow_missing)
    a.flag(arguments, "--allow-different-bases", allow_different_bases)
    # Clients may come from the recipe alone.
    listed = [] if clients is None and recipe is not None else a.paths(clients, "clients")
    return a.positional(arguments, listed)


def merge(
    clients: Optional[Sequence[a.PathLike]],
    output: Optional[a.PathLike] = None,
    *,
    method: Optional[str] = None,
    weights: Optional[Sequence[float]] = None,
    samples: Optional[Sequence[float]] = None,
    keep_weights: bool = False,
    rank: Optional[int] = None,
    scope: Optional[str] = None,
    max_iterations: Optional[int] = None,
    format: Optional[str] = None,
    dtype: Optional[str] = None,
    alpha: Optional[float] = None,
    base: Optional[a.PathLike] = None,
    shard_size: Optional[str] = None,
    adapter_output: Optional[a.PathLike] = None,
    base_config: Optional[a.PathLike] = None,
    recipe: Optional[a.PathLike] = None,
    no_errors: bool = False,
    dry_run: bool = False,
    allow_missing: bool = False,
    allow_different_bases: bool = False,
) -> MergeResult:
    """`fedlora merge CLIENTS -o OUTPUT`: aggregates client adapters (method None is the CLI's
    default, flora-na, or the recipe's), or with `base` folds the aggregate into base weights.

    Returns the merge report (per-layer shape, rank, `||T||`, relative error, floor, FLoRA-NA
    coefficients) or with `dry_run` the plan. Raises UsageError (refused options, weights of the
    wrong length, an output that is an input: nothing written) or CommandError (bad input)."""
    arguments = merge_arguments(
        clients, output, method=method, weights=weights, samples=samples, keep_weights=keep_weights,
        rank=rank, scope=scope, max_iterations=max_iterations, format=format, dtype=dtype, alpha=alpha,
        base=base, shard_size=shard_size, adapter_output=adapter_output, base_config=base_config,
        recipe=recipe, no_errors=no_errors, dry_run=dry_run, allow_missing=allow_missing,
        allow_different_bases=allow_different_bases,
    )  # fmt: skip
    return MergeResult.from_json(run_json(arguments, schemas=["fedlora.merge"]))


def inspect(
    paths: Sequence[a.PathLike],
    *,
    file: bool = False,
    tensors: bool = False,
    filter: Optional[str] = None,
    sort: Optional[str] = None,
    top: Optional[int] = None,
    rank: Optional[int] = None,
    weights: Optional[Sequence[float]] = None,
    samples: Optional[Sequence[float]] = None,
    against: Optional[a.PathLike] = None,
    expect: Optional[str] = None,
    waive: Optional[Sequence[str]] = None,
    alpha: Optional[float] = None,
    allow_missing: bool = False,
    allow_different_bases: bool = False,
    plot: Optional[a.PathLike] = None,
    base_config: Optional[a.PathLike] = None,
    check: bool = True,
) -> InspectResult:
    """`fedlora inspect PATHS`: one adapter (AdapterInspection), several (ClientsInspection,
    with `against` an audit and its verdict), or checkpoints / `file` / `tensors`
    (FileInspection).

    A run that fails its check but still reports (`expect` not met, unreadable modules) raises
    CommandError with the parsed result in `.result`; with `check=False` that result is
    returned instead (`ok` False, `error` set)."""
    arguments = ["inspect"]
    a.flag(arguments, "--file", file)
    a.flag(arguments, "--tensors", tensors)
    a.option(arguments, "--filter", None if filter is None else a.text(filter, "filter"))
    a.option(arguments, "--sort", None if sort is None else a.text(sort, "sort"))
    a.option(arguments, "--top", None if top is None else str(a.integer(top, "top")))
    a.option(arguments, "--rank", None if rank is None else str(a.integer(rank, "rank")))
    _weighting(arguments, weights, samples)
    a.option(arguments, "--against", None if against is None else a.path(against, "against"))
    a.option(arguments, "--expect", None if expect is None else a.text(expect, "expect"))
    if waive is not None:
        a.option(arguments, "--waive", ",".join(a.texts(waive, "waive")))
    a.option(arguments, "--alpha", None if alpha is None else repr(a.real(alpha, "alpha")))
    a.flag(arguments, "--allow-missing", allow_missing)
    a.flag(arguments, "--allow-different-bases", allow_different_bases)
    a.option(arguments, "--plot", None if plot is None else a.path(plot, "plot"))
    a.option(arguments, "--base-config", None if base_config is None else a.path(base_config, "base_config"))
    _check_flag(check)
    document = run_json(
        a.positional(arguments, a.paths(paths, "paths")),
        schemas=["fedlora.inspect.adapter", "fedlora.inspect.clients", "fedlora.inspect.file", "fedlora.inspect"],
        parse=inspect_result,
        check=check,
    )
    return inspect_result(document)


def verify(paths: Sequence[a.PathLike], *, data: bool = False, check: bool = True) -> VerifyResult:
    """`fedlora verify PATHS`: full structural validation; with `data` every tensor read (NaN/Inf
    counts, CRC-32 per tensor). A path that fails raises CommandError (`verify-failed`, the
    parsed result in `.result`); with `check=False` the result is returned (`valid` False)."""
    arguments = ["verify"]
    a.flag(arguments, "--data", data)
    _check_flag(check)
    document = run_json(
        a.positional(arguments, a.paths(paths, "paths")),
        schemas=["fedlora.verify"],
        parse=VerifyResult.from_json,
        check=check,
    )
    return VerifyResult.from_json(document)


def convert(
    input: a.PathLike,
    output: a.PathLike,
    *,
    dtype: Optional[str] = None,
    shard_size: Optional[str] = None,
    skip_unsupported: bool = False,
    keep_names: bool = False,
    dry_run: bool = False,
    base_config: Optional[a.PathLike] = None,
) -> ConvertResult:
    """`fedlora convert INPUT OUTPUT`: safetensors <-> GGUF (llama-family names, row order and
    vocabulary as llama.cpp's converter makes them), PEFT <-> GGUF LoRA adapters."""
    arguments = ["convert"]
    a.option(arguments, "--dtype", None if dtype is None else a.text(dtype, "dtype"))
    a.option(arguments, "--shard-size", None if shard_size is None else a.text(shard_size, "shard_size"))
    a.flag(arguments, "--skip-unsupported", skip_unsupported)
    a.flag(arguments, "--keep-names", keep_names)
    a.flag(arguments, "--dry-run", dry_run)
    a.option(arguments, "--base-config", None if base_config is None else a.path(base_config, "base_config"))
    document = run_json(
        a.positional(arguments, [a.path(input, "input"), a.path(output, "output")]), schemas=["fedlora.convert"]
    )
    return ConvertResult.from_json(document)


def cli(arguments: Sequence[str], *, check: bool = True) -> Tuple[int, str, str]:
    """Runs `fedlora ARGUMENTS` as given (no `--json` added): (exit status, stdout, stderr). For
    the outputs the typed API leaves out (`--csv`, `--markdown`, tables); errors as the API's."""
    if isinstance(arguments, (str, bytes)) or not all(isinstance(item, str) for item in arguments):
        raise UsageError("usage", "arguments must be a list of strings")
    return run_text(list(arguments), check=check)


def version() -> str:
    """The fedlora binary's version (`fedlora --version`)."""
    return run_text(["--version"])[1].strip()


def build_info() -> Dict[str, str]:
    """`fedlora --version --verbose` as a dict: version, and which BLAS/LAPACK the binary loads
    (`blas`, `lapacke`: paths and where they come from; `openblas`: its build; `kernels`).
    Raises CommandError naming what is missing when they cannot be loaded."""
    _, out, _ = run_text(["--version", "--verbose"])
    pairs = (line.split(": ", 1) for line in out.splitlines() if ": " in line)
    return {key: value for key, value in pairs}


def _check_flag(check: Any) -> None:
    if not isinstance(check, bool):
        raise UsageError("usage", f"check must be True or False, got {type(check).__name__} {check!r}")
