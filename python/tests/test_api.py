"""The API on the fixtures against the CLI run directly: the same documents, the same bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import pytest

import fedlora
from conftest import CLIENTS, FIXTURES, cli, cli_json


def _without_paths(document: Dict[str, Any], *paths: str) -> Dict[str, Any]:
    text = repr(document)
    for index, path in enumerate(paths):
        text = text.replace(path, f"<path{index}>")
    return eval(text)  # noqa: S307 - our own repr of JSON values


@pytest.mark.parametrize("method", ["flora-na", "fedavg", "svd", "stack"])
def test_merge_equals_the_cli(binary: str, tmp_path: Path, method: str) -> None:
    api_out, cli_out = tmp_path / "api", tmp_path / "cli"
    result = fedlora.merge(CLIENTS, api_out, method=method, samples=[100, 200, 300])
    status, document = cli_json(
        binary, "merge", *CLIENTS, "--method", method, "--samples", "100,200,300", "-o", str(cli_out)
    )
    assert status == 0
    assert _without_paths(result.raw, str(api_out)) == _without_paths(document, str(cli_out))
    assert (api_out / "adapter_model.safetensors").read_bytes() == (cli_out / "adapter_model.safetensors").read_bytes()
    assert (api_out / "adapter_config.json").read_bytes() == (cli_out / "adapter_config.json").read_bytes()
    assert result.method == method and result.output == str(api_out) and len(result.layers) == 14
    assert result.clients == tuple(CLIENTS) and result.weights == pytest.approx((1 / 6, 2 / 6, 3 / 6))
    layer = result.layers[0]
    assert layer.name == "model.layers.0.mlp.down_proj" and layer.shape == (64, 96)
    assert 0 <= layer.floor <= layer.relative_error  # type: ignore[operator]
    if method == "flora-na":
        assert len(layer.p) == len(layer.q) == 3 and layer.iterations >= 1  # type: ignore[arg-type,operator]
        assert result.model_error == pytest.approx(2.78e-02, abs=5e-5)
    else:
        assert layer.p is None


def test_merge_options_reach_the_cli(tmp_path: Path) -> None:
    result = fedlora.merge(CLIENTS, tmp_path / "svd.safetensors", method="svd", rank=4, dtype="f16", weights=[1, 1, 2])
    assert result.rank == 4 and {layer.rank for layer in result.layers} == {4}
    assert result.weights == (0.25, 0.25, 0.5)
    no_errors = fedlora.merge(
        CLIENTS, tmp_path / "sum", method="fedavg", weights=[1, 1, 1], keep_weights=True, no_errors=True
    )
    assert (
        no_errors.model_error is None and no_errors.layers[0].relative_error is None and no_errors.weights == (1, 1, 1)
    )
    model = fedlora.merge(CLIENTS, tmp_path / "model", scope="model", max_iterations=5)
    assert len({layer.p for layer in model.layers}) == 1
    base = fedlora.merge(CLIENTS, tmp_path / "merged-model", method="exact", base=FIXTURES / "adapters" / "base")
    assert base.model_error == 0 and (tmp_path / "merged-model" / "model.safetensors.index.json").is_file()


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    plan = fedlora.merge(CLIENTS, tmp_path / "out", method="fedavg", dry_run=True)
    assert plan.dry_run and not (tmp_path / "out").exists()
    assert [Path(f.path).name for f in plan.planned] == ["adapter_model.safetensors", "adapter_config.json"]
    assert plan.layers[0].rank == 8 and plan.layers[0].relative_error is None
    converted = fedlora.convert(FIXTURES / "sharded", tmp_path / "model.gguf", dry_run=True)
    assert converted.dry_run and converted.planned[0].tensors == 12 and not (tmp_path / "model.gguf").exists()


def test_recipe(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "method: fedavg\nclients:\n"
        + "".join(f"  - {{path: {c}, samples: {n}}}\n" for c, n in zip(CLIENTS, (100, 200, 300)))
        + f"output: {tmp_path / 'out'}\n"
    )
    result = fedlora.merge(None, recipe=recipe)
    assert result.method == "fedavg" and result.weights == pytest.approx((1 / 6, 2 / 6, 3 / 6))


def test_inspect_one_adapter_equals_the_cli(binary: str) -> None:
    result = fedlora.inspect([FIXTURES / "adapters" / "client_r4"], top=2, filter="layers.1.self")
    _, document = cli_json(
        binary, "inspect", str(FIXTURES / "adapters" / "client_r4"), "--top", "2", "--filter", "layers.1.self"
    )
    assert isinstance(result, fedlora.AdapterInspection) and result.raw == document
    row = result.layers[0]
    assert row.module == "model.layers.1.self_attn.k_proj" and (row.d, row.k, row.r) == (32, 64, 4)
    assert len(row.sigmas) == 2 and row.numerical_rank == 4 and row.flags == ()
    assert result.config is not None and result.config["r"] == 4


def test_inspect_clients_and_audit(binary: str, tmp_path: Path) -> None:
    fedlora.merge(CLIENTS, tmp_path / "merged-fedavg", method="fedavg")
    result = fedlora.inspect(CLIENTS, against=tmp_path / "merged-fedavg", filter="layers.0")
    _, document = cli_json(
        binary, "inspect", *CLIENTS, "--against", str(tmp_path / "merged-fedavg"), "--filter", "layers.0"
    )
    assert isinstance(result, fedlora.ClientsInspection) and result.raw == document
    assert result.verdict_code == "no-better-than-fedavg" and result.weights_source == "recorded"
    assert result.model.flora_na is not None and result.model.floor <= result.model.flora_na <= result.model.fedavg  # type: ignore[operator]
    assert result.tolerances is not None and result.tolerances.flora_na is not None
    assert len(result.layers[0].cosines) == 3
    # A failed expectation is exit 1 with the whole document: raised with the result, or returned.
    with pytest.raises(fedlora.CommandError) as failed:
        fedlora.inspect(CLIENTS, against=tmp_path / "merged-fedavg", expect="flora-na")
    assert failed.value.code == "expectation-failed" and failed.value.exit_status == 1
    assert isinstance(failed.value.result, fedlora.ClientsInspection) and failed.value.result.expectation_met is False
    unchecked = fedlora.inspect(CLIENTS, against=tmp_path / "merged-fedavg", expect="flora-na", check=False)
    assert (
        isinstance(unchecked, fedlora.ClientsInspection)
        and not unchecked.ok
        and unchecked.error.code == "expectation-failed"
    )  # type: ignore[union-attr]


def test_audit_provenance_and_waivers(tmp_path: Path) -> None:
    """A merge that left a client out fails an audit by its record, unless the user waives it."""
    fedlora.merge(CLIENTS[:2], tmp_path / "partial", method="fedavg")
    with pytest.raises(fedlora.CommandError) as failed:
        fedlora.inspect(CLIENTS, against=tmp_path / "partial", expect="fedavg")
    assert failed.value.code == "provenance-mismatch"
    audit = failed.value.result
    assert isinstance(audit, fedlora.ClientsInspection) and audit.provenance is not None
    assert audit.provenance.unknown == (CLIENTS[2],) and audit.provenance.mismatches == ("clients",)
    waived = fedlora.inspect(CLIENTS, against=tmp_path / "partial", expect="fedavg", waive=["clients"], check=False)
    assert isinstance(waived, fedlora.ClientsInspection) and waived.provenance is not None
    assert waived.provenance.waived == ("clients",)
    merged = fedlora.merge(CLIENTS, tmp_path / "svd", method="svd", rank=8)
    assert merged.dtype == "F32" and merged.dtype_source == "clients"
    optimal = fedlora.inspect(CLIENTS, against=tmp_path / "svd", expect="floor")
    assert isinstance(optimal, fedlora.ClientsInspection) and optimal.verdict_code == "optimal-at-rank"
    with pytest.raises(fedlora.UsageError):
        fedlora.inspect(CLIENTS, against=tmp_path / "svd", expect="floor", waive=[3])


def test_inspect_files_verify_convert(binary: str, tmp_path: Path) -> None:
    header = fedlora.inspect([FIXTURES / "gguf" / "align64.gguf"], tensors=True)
    assert isinstance(header, fedlora.FileInspection)
    assert header.files[0].format == "gguf" and [t.name for t in header.files[0].tensors or ()] == [
        "a.f32",
        "b.f16",
        "c.f32",
        "d.f16",
    ]
    verified = fedlora.verify([FIXTURES / "sharded"], data=True)
    _, document = cli_json(binary, "verify", str(FIXTURES / "sharded"), "--data")
    assert verified.raw == document and verified.valid and len(verified.files[0].tensors or ()) == 12
    converted = fedlora.convert(FIXTURES / "sharded", tmp_path / "model.gguf", dtype="f16")
    assert converted.format == "gguf" and converted.tensors == 12 and (tmp_path / "model.gguf").is_file()
    status, _, _ = cli(binary, "convert", str(FIXTURES / "sharded"), str(tmp_path / "cli.gguf"), "--dtype", "f16")
    assert status == 0 and (tmp_path / "model.gguf").read_bytes() == (tmp_path / "cli.gguf").read_bytes()


def test_results_keep_unknown_fields_and_accept_both_tolerance_spellings() -> None:
    from fedlora.results import ClientsInspection

    document = {
        "schema": "fedlora.inspect.clients/1", "ok": True, "warnings": [], "clients": ["a", "b"], "weights": [0.5, 0.5],
        "weights_source": "given", "against": None, "model": {"fedavg": 0.2, "flora_na": 0.1, "floor": 0.05},
        "verdict": None, "verdict_code": None, "tolerances": {"fedavg": 1e-9, "flora-na": 2e-9, "floor": 3e-9},
        "expect": None, "expectation_met": None, "plot": None, "layers": [],
        "provenance": {"recorded": True, "matched": ["a"], "missing": ["c"], "unknown": ["b"], "method": "fedavg"},
        "new_field": 1,
    }  # fmt: skip
    result = ClientsInspection.from_json(document)
    assert result.tolerances is not None and result.tolerances.flora_na == 2e-9
    assert result.provenance is not None and result.provenance.missing == ("c",) and result.provenance.rank is None
    assert result.raw["new_field"] == 1


def test_cli_runs_any_command_line() -> None:
    status, out, _ = fedlora.cli(["inspect", CLIENTS[0], "--csv", "--filter", "layers.0.mlp.up"])
    assert status == 0 and out.splitlines()[0].startswith("module,d,k,r")
    with pytest.raises(fedlora.UsageError):
        fedlora.cli(["merge", CLIENTS[0], "--rank", "2", "-o", "/nonexistent/x"])
