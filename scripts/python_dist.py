#!/usr/bin/env python3
"""Release artefacts from one release build (standard library only; `make wheel`, `make dist`).

    python3 scripts/python_dist.py stage --binary B --openblas-wheel W --out STAGE
    python3 scripts/python_dist.py tarball --wheel WHEEL --out DIST

stage: the release binary (stripped), libscipy_openblas.so out of the scipy-openblas32 wheel,
the man pages of man/, the bash/zsh/fish completions the binary generates, and the licences of
what the binary and the library carry, laid out as an install prefix (bin/, lib/fedlora/,
share/) plus licenses/ and VERSION. python/build_backend packs it into the wheel.

tarball: fedlora-VERSION-linux-ARCH.tar.gz from the files of the (repaired) wheel, so both
artefacts carry the same bytes: bin/fedlora, lib/fedlora/, share/, licenses/, README, and a
SHA256SUMS of every file; reproducible (sorted, fixed owner and mtime, gzip without a name).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What the statically linked binary carries (Swift runtime and Foundation with ICU, the SwiftPM
# dependencies, OpenSSL's libcrypto, zlib), each licence from where this build took the code.
BINARY_LICENSES = {
    "swift-runtime-and-foundation.txt": ["/opt/swift/usr/share/swift/LICENSE.txt"],
    "swift-argument-parser.txt": [".build/checkouts/swift-argument-parser/LICENSE.txt"],
    "Yams.txt": [".build/checkouts/Yams/LICENSE"],
    "openssl-libcrypto.txt": ["/usr/share/doc/libssl-dev/copyright", "/usr/share/doc/libssl3/copyright"],
    "zlib.txt": ["/usr/share/doc/zlib1g-dev/copyright", "/usr/share/doc/zlib1g/copyright"],
}

COMPLETIONS = {
    "bash": "share/bash-completion/completions/fedlora",
    "zsh": "share/zsh/site-functions/_fedlora",
    "fish": "share/fish/vendor_completions.d/fedlora.fish",
}


def stage(binary: Path, openblas_wheel: Path, out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    (out / "bin").mkdir(parents=True)
    (out / "lib" / "fedlora").mkdir(parents=True)
    (out / "licenses").mkdir()
    target = out / "bin" / "fedlora"
    # Stripped: the symbol tables and debug info are two thirds of the file, not used at run time.
    subprocess.run(["strip", "-o", str(target), str(binary)], check=True)
    version = subprocess.run([str(target), "--version"], check=True, capture_output=True, text=True).stdout.strip()
    (out / "VERSION").write_text(version + "\n")
    with zipfile.ZipFile(openblas_wheel) as archive:
        names = archive.namelist()
        library = next(n for n in names if n.endswith("/lib/libscipy_openblas.so"))
        licence = next(
            n for n in names if n.endswith(".dist-info/licenses/LICENSE.txt") or n.endswith(".dist-info/LICENSE.txt")
        )
        (out / "lib" / "fedlora" / "libscipy_openblas.so").write_bytes(archive.read(library))
        (out / "licenses" / "OpenBLAS-LAPACK-gfortran-scipy-openblas32.txt").write_bytes(archive.read(licence))
    for name, candidates in BINARY_LICENSES.items():
        found = next((ROOT / c for c in candidates if (ROOT / c).is_file()), None)
        if found is None:
            raise SystemExit(f"python_dist: licence for {name} not found (looked in {', '.join(candidates)})")
        shutil.copyfile(found, out / "licenses" / name)
    (out / "licenses" / "README").write_text(
        f"fedlora {version}: the licences of the software this distribution carries.\n\n"
        "bin/fedlora is statically linked with the Swift runtime and Foundation (with ICU),\n"
        "swift-argument-parser, Yams, OpenSSL's libcrypto (SHA-256) and zlib; it uses glibc and\n"
        "libstdc++ from the system. lib/fedlora/libscipy_openblas.so is OpenBLAS with LAPACK,\n"
        "LAPACKE and the GCC Fortran runtime, as built by the scipy-openblas32 project\n"
        f"({openblas_wheel.name}).\n"
    )
    man = out / "share" / "man" / "man1"
    man.mkdir(parents=True)
    for page in sorted((ROOT / "man").glob("*.1")):
        shutil.copyfile(page, man / page.name)
    for shell, relative in COMPLETIONS.items():
        script = subprocess.run(
            [str(target), "--generate-completion-script", shell], check=True, capture_output=True
        ).stdout
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        (out / relative).write_bytes(script)
    # The staged binary finds the staged library as an installed one would (bin/../lib/fedlora).
    verbose = subprocess.run([str(target), "--version", "--verbose"], check=True, capture_output=True, text=True)
    if "(bundled, symbols prefixed scipy_)" not in verbose.stdout:
        raise SystemExit(f"python_dist: the staged binary does not load the bundled OpenBLAS:\n{verbose.stdout}")
    print(f"staged fedlora {version} in {out}")


def tarball(wheel: Path, out: Path) -> Path:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/WHEEL"))
        version = dist_info[len("fedlora-") : -len(".dist-info")]
        data = f"fedlora-{version}.data/"
        top = f"fedlora-{version}-linux-{os.uname().machine}"
        files: dict = {}
        for name in names:
            if name.endswith("/"):  # directory entries (auditwheel's repack writes them)
                continue
            if name.startswith(data + "scripts/"):
                files["bin/" + name[len(data + "scripts/") :]] = (archive.read(name), 0o755)
            elif name.startswith(data + "data/"):
                relative = name[len(data + "data/") :]
                files[relative] = (archive.read(name), 0o755 if relative.endswith(".so") else 0o644)
            elif name.startswith(f"{dist_info}/licenses/"):
                files["licenses/" + name[len(f"{dist_info}/licenses/") :]] = (archive.read(name), 0o644)
    files["README"] = (
        (
            f"fedlora {version} for Linux {os.uname().machine}\n\n"
            "bin/fedlora runs from here (it loads lib/fedlora/libscipy_openblas.so beside it); or copy\n"
            "bin/, lib/ and share/ under a prefix such as /usr/local or ~/.local. Man pages are in\n"
            "share/man/man1, completions in share/{bash-completion,zsh,fish}. Needs glibc 2.35 or\n"
            "later and libstdc++ (GCC 12 or later). `fedlora --version --verbose` names the BLAS it loads.\n"
        ).encode(),
        0o644,
    )
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, (data, _) in sorted(files.items()))
    files["SHA256SUMS"] = (sums.encode(), 0o644)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{top}.tar.gz"
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        folders = sorted({str(Path(top, name).parent) for name in files} | {top})
        for folder in sorted({p for f in folders for p in [*map(str, Path(f).parents), f] if p not in (".", "")}):
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, epoch
            tar.addfile(info)
        for name, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mode, info.mtime = len(data), mode, epoch
            tar.addfile(info, io.BytesIO(data))
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=epoch, compresslevel=9) as gz,
    ):
        gz.write(buffer.getvalue())
    print(f"wrote {path}")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    s = commands.add_parser("stage")
    s.add_argument("--binary", type=Path, required=True)
    s.add_argument("--openblas-wheel", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    t = commands.add_parser("tarball")
    t.add_argument("--wheel", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args()
    if arguments.command == "stage":
        stage(arguments.binary, arguments.openblas_wheel, arguments.out)
    else:
        tarball(arguments.wheel, arguments.out)


if __name__ == "__main__":
    main()
