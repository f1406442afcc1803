"""The wheel's fedlora on a machine without the system's OpenBLAS and LAPACKE: a private mount
namespace (unshare -m) with an empty tmpfs over the folder Debian installs OpenBLAS into and an
empty file over LAPACKE, where a source build cannot compute and the wheel's merges with
FLoRA-NA, the tensors equal to those it writes beside the system's libraries."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path
from typing import List

import pytest

from conftest import CLIENTS


def _system_libraries() -> List[Path]:
    listing = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True).stdout
    found = []
    for soname in ("libopenblas.so.0", "liblapacke.so.3"):
        for line in listing.splitlines():
            if line.strip().startswith(soname + " ") and "x86-64" in line:
                found.append(Path(os.path.realpath(line.split("=>")[-1].strip())))
                break
    return found


def _hide(libraries: List[Path]) -> str:
    """Shell commands that hide each library: its own folder under a tmpfs when the folder is an
    OpenBLAS/LAPACK one (openblas-pthread, ...), else the file under an empty one."""
    commands = []
    for library in libraries:
        if library.parent.name in ("openblas-pthread", "openblas-openmp", "openblas-serial", "lapack", "blas"):
            commands.append(f"mount -t tmpfs none {shlex.quote(str(library.parent))}")
        else:
            commands.append(f"mount --bind /dev/null {shlex.quote(str(library))}")
    return " && ".join(commands)


def test_wheel_merges_with_flora_na_while_the_system_openblas_is_hidden(binary: str, tmp_path: Path) -> None:
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -m is not permitted here (needs root): the hidden-OpenBLAS check did not run")
    libraries = _system_libraries()
    if not libraries:
        pytest.skip("no system OpenBLAS/LAPACKE installed: nothing to hide (the machine is already the case tested)")
    arguments = " ".join(shlex.quote(c) for c in CLIENTS)
    source = os.environ.get("FEDLORA_SOURCE_BINARY")
    script = (
        f"{_hide(libraries)} && "
        + (
            f"{{ {shlex.quote(source)} merge {arguments} -o {tmp_path}/source --quiet; echo source-status=$?; }} && "
            if source
            else ""
        )
        + f"{shlex.quote(binary)} --version --verbose && "
        f"{shlex.quote(binary)} merge {arguments} --method flora-na --samples 100,200,300 -o {tmp_path}/hidden --quiet"
    )
    run = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "(bundled, symbols prefixed scipy_)" in run.stdout
    if source:
        assert "source-status=1" in run.stdout and "cannot load BLAS/LAPACK" in run.stderr, (
            "the system's OpenBLAS was hidden"
        )
    subprocess.run(
        [
            binary,
            "merge",
            *CLIENTS,
            "--method",
            "flora-na",
            "--samples",
            "100,200,300",
            "-o",
            str(tmp_path / "seen"),
            "--quiet",
        ],
        check=True,
    )
    hidden = (tmp_path / "hidden" / "adapter_model.safetensors").read_bytes()
    assert hidden == (tmp_path / "seen" / "adapter_model.safetensors").read_bytes()
