"""The wheel as installed: the native command, its bundled OpenBLAS, a cheap import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import fedlora


def test_package_comes_from_the_venv_not_the_checkout() -> None:
    assert Path(fedlora.__file__).resolve().is_relative_to(Path(sys.prefix).resolve()), fedlora.__file__
    assert (Path(fedlora.__file__).parent / "py.typed").is_file()


def test_the_command_is_the_native_binary_with_its_openblas(binary: str) -> None:
    assert Path(binary) == Path(sys.prefix) / "bin" / "fedlora"
    assert Path(binary).read_bytes()[:4] == b"\x7fELF", "the script is the binary, not a Python launcher"
    info = fedlora.build_info()
    assert info["version"] == fedlora.version() == fedlora.__version__
    library = Path(sys.prefix) / "lib" / "fedlora" / "libscipy_openblas.so"
    assert info["blas"] == f"{library.resolve()} (bundled, symbols prefixed scipy_)"
    assert info["lapacke"] == str(library.resolve())
    assert info["openblas"].startswith("OpenBLAS 0.3.")


def test_man_pages_completions_and_licences_are_installed() -> None:
    prefix = Path(sys.prefix)
    assert (prefix / "share" / "man" / "man1" / "fedlora.merge.1").is_file()
    assert (prefix / "share" / "bash-completion" / "completions" / "fedlora").read_text().startswith("#!/bin/bash")
    assert (prefix / "share" / "zsh" / "site-functions" / "_fedlora").is_file()
    licences = next(prefix.glob("lib/python3*/site-packages/fedlora-*.dist-info/licenses"))
    assert {"OpenBLAS-LAPACK-gfortran-scipy-openblas32.txt", "Yams.txt", "openssl-libcrypto.txt"} <= {
        p.name for p in licences.iterdir()
    }


def test_extras_name_what_the_optional_modules_import() -> None:
    from importlib.metadata import metadata

    fields = metadata("fedlora")
    assert {"state-dicts", "flower"} <= set(fields.get_all("Provides-Extra") or [])
    assert 'flwr>=1.22; extra == "flower"' in (fields.get_all("Requires-Dist") or [])


def test_import_is_cheap_and_loads_nothing_heavy() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import fedlora; t = time.perf_counter() - t; "
        "heavy = [m for m in ('numpy', 'safetensors', 'torch', 'subprocess', 'dataclasses') if m in sys.modules]; "
        "print(t, *heavy)"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
        for _ in range(5)
    ]
    assert min(float(run[0]) for run in runs) < 0.050
    assert all(run[1:] == [] for run in runs), runs


def test_python_m_fedlora_runs_the_binary() -> None:
    run = subprocess.run([sys.executable, "-m", "fedlora", "--version"], capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.strip() == fedlora.__version__


def test_fedlora_binary_overrides_and_is_checked(tmp_path: Path) -> None:
    code = "import fedlora; print(fedlora.find_binary())"
    env = {**os.environ, "FEDLORA_BINARY": str(tmp_path / "missing")}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert run.returncode == 1 and "FEDLORA_BINARY names" in run.stderr and "BinaryNotFoundError" in run.stderr
