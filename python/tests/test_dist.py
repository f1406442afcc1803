"""The release tarball `make dist` makes from the wheel: the same files, checksummed, runnable
where it is unpacked."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import CLIENTS, REPO


def test_tarball_from_the_wheel(tmp_path: Path) -> None:
    wheels = sorted((REPO / "dist").glob("fedlora-*-manylinux_*.whl"))
    if not wheels:
        pytest.skip("no wheel in dist/ (make wheel makes one)")
    script = REPO / "scripts" / "python_dist.py"
    command = [sys.executable, str(script), "tarball", "--wheel", str(wheels[-1]), "--out", str(tmp_path)]
    subprocess.run(command, check=True)
    (archive,) = tmp_path.glob("fedlora-*-linux-*.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "x")
    (top,) = (tmp_path / "x").iterdir()
    for line in (top / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((top / name).read_bytes()).hexdigest() == digest, name
    listed = {line.split("  ", 1)[1] for line in (top / "SHA256SUMS").read_text().splitlines()}
    assert {"bin/fedlora", "lib/fedlora/libscipy_openblas.so", "share/man/man1/fedlora.merge.1"} <= listed
    assert any(name.startswith("licenses/OpenBLAS") for name in listed)
    verbose = subprocess.run([str(top / "bin" / "fedlora"), "--version", "--verbose"], capture_output=True, text=True)
    assert f"{(top / 'lib' / 'fedlora' / 'libscipy_openblas.so').resolve()} (bundled" in verbose.stdout
    merged = subprocess.run([str(top / "bin" / "fedlora"), "merge", *CLIENTS, "-o", str(tmp_path / "m"), "--quiet"])
    assert merged.returncode == 0
