"""merge_state_dicts: PEFT state dicts in memory, merged through a private folder that is always
removed, with the tensors of the file route byte for byte."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

np = pytest.importorskip("numpy")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

import fedlora  # noqa: E402
from conftest import CLIENTS  # noqa: E402


def _client(folder: str) -> Dict[str, Any]:
    return dict(safetensors_numpy.load_file(str(Path(folder) / "adapter_model.safetensors")))


def _config(folder: str) -> Dict[str, Any]:
    return json.loads((Path(folder) / "adapter_config.json").read_text())


def _shm_leftovers() -> List[str]:
    shm = Path("/dev/shm")
    return sorted(p.name for p in shm.glob("fedlora-*")) if shm.is_dir() else []


@pytest.mark.parametrize("method", ["flora-na", "fedavg", "svd"])
def test_in_memory_equals_the_file_route(tmp_path: Path, method: str) -> None:
    before = _shm_leftovers()
    states = [_client(c) for c in CLIENTS]
    merged, result = fedlora.merge_state_dicts(
        states, config=_config(CLIENTS[0]), method=method, samples=[100, 200, 300]
    )
    # The file route: the same state dicts written as PEFT folders, merged with fedlora.merge.
    folders = []
    for index, state in enumerate(states):
        folder = tmp_path / f"c{index}"
        folder.mkdir()
        safetensors_numpy.save_file(state, str(folder / "adapter_model.safetensors"), metadata={"format": "pt"})
        (folder / "adapter_config.json").write_text(json.dumps(_config(CLIENTS[0])))
        folders.append(folder)
    expected = fedlora.merge(folders, tmp_path / "out", method=method, samples=[100, 200, 300])
    on_disk = safetensors_numpy.load_file(str(tmp_path / "out" / "adapter_model.safetensors"))
    assert sorted(merged) == sorted(on_disk)
    for key, value in on_disk.items():
        assert merged[key].dtype == value.dtype and merged[key].shape == value.shape
        assert merged[key].tobytes() == value.tobytes(), key
    assert [layer.raw for layer in result.layers] == [layer.raw for layer in expected.layers]
    assert result.model_error == expected.model_error and result.method == method
    assert result.adapter_config == json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert _shm_leftovers() == before, "the private folder is removed"


def test_the_fixtures_state_dicts_equal_the_fixture_merge(tmp_path: Path) -> None:
    # The clients' own files against the same tensors from memory (float32 fixtures): same bytes.
    merged, _ = fedlora.merge_state_dicts(
        [_client(c) for c in CLIENTS], config=[_config(c) for c in CLIENTS], method="fedavg"
    )
    fedlora.merge(CLIENTS, tmp_path / "out", method="fedavg")
    on_disk = safetensors_numpy.load_file(str(tmp_path / "out" / "adapter_model.safetensors"))
    assert all(merged[k].tobytes() == v.tobytes() for k, v in on_disk.items()) and len(merged) == len(on_disk)


def test_dtype_is_kept(tmp_path: Path) -> None:
    states = [{k: v.astype(np.float16) for k, v in _client(c).items()} for c in CLIENTS]
    merged, _ = fedlora.merge_state_dicts(states, config=_config(CLIENTS[0]), method="fedavg")
    assert {v.dtype for v in merged.values()} == {np.dtype(np.float16)}
    merged32, _ = fedlora.merge_state_dicts(states, config=_config(CLIENTS[0]), method="fedavg", dtype="f32")
    assert {v.dtype for v in merged32.values()} == {np.dtype(np.float32)}


def test_bad_input_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    states = [_client(c) for c in CLIENTS]
    config = _config(CLIENTS[0])
    cases = [
        (
            lambda: fedlora.merge_state_dicts(states, config=config, weights=[1, 2]),
            "--weights has 2 values for 3 clients",
        ),
        (lambda: fedlora.merge_state_dicts(states[0], config=config), "states must be a list of state dicts"),  # type: ignore[arg-type]
        (lambda: fedlora.merge_state_dicts([{"x": [1.0]}], config=config), "give numpy arrays or torch tensors"),
        (lambda: fedlora.merge_state_dicts(states, config=42), "config must be a dict"),  # type: ignore[arg-type]
        (lambda: fedlora.merge_state_dicts(states, config=[config]), "config has 1 entries for 3 clients"),
    ]
    for call, fragment in cases:
        with pytest.raises(fedlora.UsageError) as raised:
            call()
        assert raised.value.code == "usage" and fragment in raised.value.message
    # The CLI's own refusals come back the same way, and the folder still goes.
    with pytest.raises(fedlora.UsageError) as refused:
        fedlora.merge_state_dicts(states, config=config, method="fedavg", rank=3, scratch=str(tmp_path))
    assert "--rank sets the output rank" in refused.value.message and list(tmp_path.iterdir()) == []
    broken = [dict(s) for s in states]
    del broken[1]["base_model.model.model.layers.0.mlp.down_proj.lora_B.weight"]
    with pytest.raises(fedlora.CommandError):
        fedlora.merge_state_dicts(broken, config=config, scratch=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_torch_tensors_round_trip_with_bfloat16(tmp_path: Path) -> None:
    torch = pytest.importorskip(
        "torch", reason="torch is not installed: the torch route (bf16 tensors) is not tested here"
    )
    from safetensors.torch import load_file, save_file

    states = [{k: torch.from_numpy(v).to(torch.bfloat16) for k, v in _client(c).items()} for c in CLIENTS]
    merged, result = fedlora.merge_state_dicts(states, config=_config(CLIENTS[0]), method="flora-na")
    assert {v.dtype for v in merged.values()} == {torch.bfloat16} and result.method == "flora-na"
    folders = []
    for index, state in enumerate(states):
        (tmp_path / f"c{index}").mkdir()
        save_file(state, str(tmp_path / f"c{index}" / "adapter_model.safetensors"), metadata={"format": "pt"})
        (tmp_path / f"c{index}" / "adapter_config.json").write_text(json.dumps(_config(CLIENTS[0])))
        folders.append(tmp_path / f"c{index}")
    fedlora.merge(folders, tmp_path / "out", method="flora-na")
    on_disk = load_file(str(tmp_path / "out" / "adapter_model.safetensors"))
    assert all(torch.equal(merged[k].view(torch.int16), v.view(torch.int16)) for k, v in on_disk.items())


def test_numpy_cannot_hold_bfloat16() -> None:
    with pytest.raises(fedlora.UsageError) as raised:
        fedlora.merge_state_dicts([_client(c) for c in CLIENTS], config=_config(CLIENTS[0]), dtype="bf16")
    assert "bfloat16" in raised.value.message
