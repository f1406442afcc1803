"""Shared fixtures: the repository's fixtures/, the fedlora binary the installed wheel gives, and
a CLI runner to compare the API with. `make python-test` runs these against the wheel installed
in a fresh venv; FEDLORA_REPO names the checkout (default: two folders up)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

REPO = Path(os.environ.get("FEDLORA_REPO", Path(__file__).resolve().parents[2]))
FIXTURES = REPO / "fixtures"
CLIENTS = [str(FIXTURES / "adapters" / name) for name in ("client_a", "client_b", "client_c")]


@pytest.fixture(scope="session")
def binary() -> str:
    import fedlora

    return fedlora.find_binary()


def cli(binary: str, *arguments: str) -> Tuple[int, str, str]:
    run = subprocess.run([binary, *arguments], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return run.returncode, run.stdout, run.stderr


def cli_json(binary: str, *arguments: str) -> Tuple[int, Dict[str, Any]]:
    status, out, _ = cli(binary, *arguments, "--json")
    return status, json.loads(out)


def files_of(folder: Path) -> List[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture(scope="session")
def bench_clients(tmp_path_factory: pytest.TempPathFactory) -> List[str]:
    """Ten LLaMA-7B-shaped BF16 clients of the merge benchmark (bench/make_bench_adapters.py),
    8 layers each (about 200 MB): big enough that a merge runs long enough to interrupt and to
    time."""
    folder = tmp_path_factory.mktemp("bench")
    subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "make_bench_adapters.py"),
            str(folder),
            "--clients",
            "10",
            "--layers",
            "8",
        ],
        check=True,
        capture_output=True,
    )
    return sorted(str(p) for p in folder.glob("client_*"))
