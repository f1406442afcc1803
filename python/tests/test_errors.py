"""Failures: every one a FedloraError with the CLI's code and message, nothing written."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List

import pytest

import fedlora
from conftest import CLIENTS, FIXTURES, cli_json, files_of


def test_missing_path_is_the_clis_failure(binary: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-client")
    with pytest.raises(fedlora.CommandError) as raised:
        fedlora.merge([CLIENTS[0], missing], tmp_path / "out")
    status, document = cli_json(binary, "merge", CLIENTS[0], missing, "-o", str(tmp_path / "cli"))
    assert raised.value.exit_status == status == 1
    assert (raised.value.code, raised.value.message) == (document["error"]["code"], document["error"]["message"])
    assert missing in raised.value.message and raised.value.result is None
    assert files_of(tmp_path) == []


@pytest.mark.parametrize(
    "options, message",
    [
        ({"method": "fedavg", "rank": 4}, "--rank sets the output rank of --method svd"),
        ({"weights": [1, 2]}, "--weights has 2 values for 3 clients"),
        ({"weights": [1, 2, 3], "samples": [1, 2, 3]}, "give --weights or --samples, not both"),
        ({"method": "no-such-method"}, "unknown --method 'no-such-method'"),
        ({"no_errors": True}, "--no-errors: flora-na solves on the Gram blocks"),
    ],
)
def test_refused_options_are_usage_errors(tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(fedlora.UsageError) as raised:
        fedlora.merge(CLIENTS, tmp_path / "out", **options)
    assert raised.value.code == "usage" and raised.value.exit_status == 64 and message in raised.value.message
    assert raised.value.document is not None and raised.value.document["ok"] is False
    assert files_of(tmp_path) == []


def test_output_that_is_an_input_is_refused(tmp_path: Path) -> None:
    client = tmp_path / "client"
    shutil.copytree(CLIENTS[0], client)
    with pytest.raises(fedlora.UsageError) as raised:
        fedlora.merge([client, CLIENTS[1]], client)
    assert raised.value.code == "output-is-input" and raised.value.exit_status == 64


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda out: fedlora.merge(42, out), "clients must be a list of paths, got int 42"),  # type: ignore[arg-type]
        (lambda out: fedlora.merge(CLIENTS[0], out), "clients must be a list of paths, got the single path"),
        (lambda out: fedlora.merge([CLIENTS[0], 7], out), "clients[1] must be a path"),  # type: ignore[list-item]
        (lambda out: fedlora.merge(CLIENTS, out, weights="1,2,3"), "weights must be a list of numbers"),  # type: ignore[arg-type]
        (lambda out: fedlora.merge(CLIENTS, out, weights=[1, "a", 2]), "weights[1] must be a number"),  # type: ignore[list-item]
        (lambda out: fedlora.merge(CLIENTS, out, method="svd", rank=2.5), "rank must be an integer"),  # type: ignore[arg-type]
        (lambda out: fedlora.merge(CLIENTS, out, no_errors="yes"), "no_errors must be True or False"),  # type: ignore[arg-type]
        (lambda out: fedlora.inspect(CLIENTS, check="no"), "check must be True or False"),  # type: ignore[arg-type]
    ],
)
def test_wrong_types_are_usage_errors_before_the_cli_runs(tmp_path: Path, call, fragment: str) -> None:
    with pytest.raises(fedlora.UsageError) as raised:
        call(tmp_path / "out")
    assert raised.value.code == "usage" and fragment in raised.value.message and raised.value.exit_status is None
    assert files_of(tmp_path) == []


def test_a_path_starting_with_a_dash_is_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(CLIENTS[0], tmp_path / "-a")
    result = fedlora.merge(["-a", CLIENTS[1]], "-merged", method="fedavg")
    assert result.output == "-merged" and (tmp_path / "-merged" / "adapter_model.safetensors").is_file()


@pytest.mark.parametrize(
    "name, global_name",
    [
        ("evil_os_system.bin", "posix.system"),
        ("evil_eval.bin", "__builtin__.eval"),
        ("evil_subprocess.bin", "commands.Popen"),
    ],
)
def test_malicious_pickle_is_refused_and_never_run(tmp_path: Path, name: str, global_name: str) -> None:
    evil = FIXTURES / "pytorch" / name
    with pytest.raises(fedlora.CommandError) as raised:
        fedlora.inspect([evil])
    assert (
        raised.value.code == "unsafe-pickle" and raised.value.exit_status == 1 and global_name in raised.value.message
    )
    with pytest.raises(fedlora.CommandError) as merged:
        fedlora.merge([evil, CLIENTS[0]], tmp_path / "out")
    assert merged.value.code == "unsafe-pickle" and files_of(tmp_path) == []
    verified = fedlora.verify([evil], check=False)
    assert not verified.valid and verified.files[0].problems[0].code == "unsafe-global"
    assert (
        verified.files[0].problems[0].raw["global"] == global_name and verified.files[0].problems[0].raw["offset"] >= 0
    )
    with pytest.raises(fedlora.CommandError) as failed:
        fedlora.verify([evil])
    assert failed.value.code == "verify-failed" and isinstance(failed.value.result, fedlora.VerifyResult)


def test_binary_that_cannot_run_says_what_to_do(tmp_path: Path) -> None:
    fake = tmp_path / "fedlora"
    fake.write_text("not a program")
    fake.chmod(0o755)
    code = "import fedlora\ntry:\n    fedlora.version()\nexcept fedlora.BinaryNotFoundError as e:\n    print(e.code, e.message)"  # noqa: E501
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "FEDLORA_BINARY": str(fake)}
    )
    assert run.stdout.startswith("binary-not-found cannot run") and "FEDLORA_BINARY" in run.stdout


def test_bundled_openblas_that_will_not_load_is_named(binary: str, tmp_path: Path) -> None:
    # The wheel's layout with the library missing: the binary says what is missing and how to fix it.
    (tmp_path / "bin").mkdir()
    (tmp_path / "lib" / "fedlora").mkdir(parents=True)
    shutil.copy(binary, tmp_path / "bin" / "fedlora")
    (tmp_path / "lib" / "fedlora" / "libscipy_openblas.so").write_bytes(b"")
    env = {**os.environ, "FEDLORA_BINARY": str(tmp_path / "bin" / "fedlora")}
    code = (
        "import fedlora\ntry:\n    fedlora.merge(%r, %r)\nexcept fedlora.CommandError as e:\n    print(e.code, e.message)"  # noqa: E501
        % (CLIENTS, str(tmp_path / "out"))
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert "cannot load the OpenBLAS bundled with fedlora" in run.stdout and "reinstall fedlora" in run.stdout, run
    assert not (tmp_path / "out").exists()


def _temporaries(folder: Path) -> List[str]:
    return [p.name for p in folder.iterdir() if ".fedlora-" in p.name]


def test_interrupt_reaches_the_cli_and_leaves_nothing(bench_clients: List[str], tmp_path: Path) -> None:
    # A SIGINT to this process as soon as the CLI's temporaries appear: while it is writing,
    # whatever the machine's load (a timer set from a timed run missed on a busy machine, landing
    # before the temporaries or after the commit).
    seen: List[List[str]] = []
    merge_returned = threading.Event()

    def interrupt_once_writing() -> None:
        while not merge_returned.is_set():
            found = _temporaries(tmp_path)
            if found:
                seen.append(found)
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.001)

    watcher = threading.Thread(target=interrupt_once_writing, daemon=True)
    watcher.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            fedlora.merge(bench_clients, tmp_path / "merged")
    finally:
        merge_returned.set()
        watcher.join()
    assert seen and seen[0], "the CLI was writing its temporaries when interrupted"
    assert files_of(tmp_path) == [], "no output and no .merged.fedlora-* temporaries"
    children = subprocess.run(["pgrep", "-f", f"{tmp_path}/merged"], capture_output=True, text=True).stdout
    assert children == "", "the CLI has exited"


def test_state_dict_route_removes_its_folder_on_interrupt(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    import numpy as np

    from fedlora import state_dicts

    rng = np.random.default_rng(0)
    states = [
        {
            "base_model.model.layers.0.q_proj.lora_A.weight": rng.standard_normal((8, 512), dtype=np.float32),
            "base_model.model.layers.0.q_proj.lora_B.weight": rng.standard_normal((512, 8), dtype=np.float32),
        }
        for _ in range(3)
    ]
    config = {"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj"]}
    calls: List[str] = []
    original = state_dicts.run_json

    def interrupted(arguments, **kwargs):  # the CLI's run, interrupted: a Ctrl-C while it runs
        calls.append(next(a for a in arguments if a.startswith("--output=")))
        raise KeyboardInterrupt

    state_dicts.run_json = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            fedlora.merge_state_dicts(states, config=config, scratch=str(tmp_path))
    finally:
        state_dicts.run_json = original
    assert calls and files_of(tmp_path) == []
