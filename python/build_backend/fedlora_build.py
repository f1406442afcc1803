"""The in-tree PEP 517 backend of the fedlora wheel (standard library only).

A wheel of the Python package plus what `make wheel` staged (scripts/python_dist.py stage):
the release binary as the `fedlora` script itself (no Python launcher: the command starts as
fast as the binary), its OpenBLAS, man pages and completions as data under the install prefix
(`<prefix>/lib/fedlora/`, `<prefix>/share/...`, where the binary and man(1) look), and the
licences of everything the binary and the library carry. FEDLORA_STAGE names the staged
folder (default ../.build/wheel/stage). The tag is the platform's (py3-none-linux_x86_64);
auditwheel then retags it manylinux. No sdist: the wheel is made from a release build.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import sys
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent.parent  # python/
NAME = "fedlora"


def _project() -> Dict[str, Any]:
    import tomllib  # Python 3.11+: building needs it, installing the wheel does not

    return tomllib.loads((HERE / "pyproject.toml").read_text())["project"]


def _stage() -> Path:
    stage = Path(os.environ.get("FEDLORA_STAGE", HERE.parent / ".build" / "wheel" / "stage")).resolve()
    if not (stage / "bin" / NAME).is_file():
        raise SystemExit(
            f"fedlora_build: no staged binary in {stage}/bin: run `make wheel` (scripts/python_dist.py stage)"
        )
    return stage


def _metadata(project: Dict[str, Any], version: str, licenses: List[str]) -> str:
    lines = [
        "Metadata-Version: 2.4",
        f"Name: {project['name']}",
        f"Version: {version}",
        f"Summary: {project['description']}",
        f"Requires-Python: {project['requires-python']}",
    ]
    for extra, requirements in project.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {r}; extra == "{extra}"' for r in requirements]
    lines += [f"Classifier: {c}" for c in project.get("classifiers", [])]
    lines += [f"License-File: {name}" for name in licenses]
    readme = (HERE / project["readme"]).read_text()
    lines += ["Description-Content-Type: text/markdown", "", readme]
    return "\n".join(lines)


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def _files(stage: Path, data_dir: str, dist_info: str) -> List[Tuple[str, Path]]:
    files = [
        (f"{NAME}/{p.relative_to(HERE / NAME)}", p)
        for p in sorted((HERE / NAME).rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts and p.name != "_version.py"
    ]
    files.append((f"{data_dir}/scripts/{NAME}", stage / "bin" / NAME))
    for part in ("lib", "share"):
        files += [
            (f"{data_dir}/data/{p.relative_to(stage)}", p) for p in sorted((stage / part).rglob("*")) if p.is_file()
        ]
    files += [
        (f"{dist_info}/licenses/{p.relative_to(stage / 'licenses')}", p)
        for p in sorted((stage / "licenses").rglob("*"))
        if p.is_file()
    ]
    return files


def build_wheel(
    wheel_directory: str, config_settings: Optional[Dict[str, Any]] = None, metadata_directory: Optional[str] = None
) -> str:
    project = _project()
    stage = _stage()
    version = (stage / "VERSION").read_text().strip()
    tag = "py3-none-linux_" + os.uname().machine
    dist_info = f"{NAME}-{version}.dist-info"
    data_dir = f"{NAME}-{version}.data"
    wheel_name = f"{NAME}-{version}-{tag}.whl"
    files = _files(stage, data_dir, dist_info)
    licenses = [name.split("/licenses/", 1)[1] for name, _ in files if name.startswith(f"{dist_info}/licenses/")]
    generated = {
        # The version of the binary the wheel carries, for fedlora.__version__ (no metadata read).
        f"{NAME}/_version.py": f'__version__ = "{version}"\n'.encode(),
        f"{dist_info}/METADATA": _metadata(project, version, licenses).encode(),
        f"{dist_info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: fedlora_build\nRoot-Is-Purelib: false\nTag: {tag}\n".encode()
        ),
    }
    record: List[str] = []
    # Fixed timestamps, so the same stage gives the same wheel.
    epoch = (1980, 1, 1, 0, 0, 0)
    path = Path(wheel_directory) / wheel_name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, source in files:
            data = source.read_bytes()
            info = zipfile.ZipInfo(name, epoch)
            executable = (
                name.endswith(f"/scripts/{NAME}") or name.endswith(".so") or source.stat().st_mode & stat.S_IXUSR
            )
            info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
            record.append(_record_line(name, data))
        for name, data in generated.items():
            info = zipfile.ZipInfo(name, epoch)
            info.external_attr = (0o644 | stat.S_IFREG) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
            record.append(_record_line(name, data))
        record.append(f"{dist_info}/RECORD,,")
        info = zipfile.ZipInfo(f"{dist_info}/RECORD", epoch)
        info.external_attr = (0o644 | stat.S_IFREG) << 16
        archive.writestr(info, "\n".join(record) + "\n")
    return wheel_name


def build_sdist(sdist_directory: str, config_settings: Optional[Dict[str, Any]] = None) -> str:
    raise SystemExit("fedlora's wheel is made from a release build (`make wheel`); there is no sdist")


def get_requires_for_build_wheel(config_settings: Optional[Dict[str, Any]] = None) -> List[str]:
    return []


if __name__ == "__main__":
    print(build_wheel(sys.argv[1] if len(sys.argv) > 1 else "."))
