"""Where the fedlora executable is: FEDLORA_BINARY, else the one this package's wheel installed,
else `fedlora` on PATH.

The wheel installs the native executable itself as its `fedlora` script (`<prefix>/bin/fedlora`,
no Python launcher: start-up stays that of the binary) and its OpenBLAS in
`<prefix>/lib/fedlora/`, where the binary looks for it. An explicit FEDLORA_BINARY wins over
both, so a source build can be driven by an installed package.
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path
from typing import List, Optional

from .errors import BinaryNotFoundError

__all__ = ["find_binary"]

_NAME = "fedlora"


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _wheel_candidates() -> List[Path]:
    """The script this distribution installed: first where a standard layout puts it
    (`<prefix>/lib/pythonX.Y/site-packages/fedlora` -> `<prefix>/bin/fedlora`), then where the
    installed wheel's RECORD says it went (any scheme: --user, --prefix, Debian's dist-packages)."""
    package = Path(__file__).resolve().parent
    candidates = []
    if len(package.parents) > 3:
        candidates.append(package.parents[3] / "bin" / _NAME)
    try:
        from importlib import metadata

        files = metadata.files(_NAME) or []
        for entry in files:
            if entry.name == _NAME and entry.parent.name == "bin":
                candidates.append(Path(str(entry.locate())).resolve())
    except Exception:  # no metadata (a source checkout): the other routes remain
        pass
    return candidates


@functools.lru_cache(maxsize=None)
def _find(environment: Optional[str], path: Optional[str]) -> str:
    if environment:
        named = Path(environment)
        if not _is_executable(named):
            raise BinaryNotFoundError(
                "binary-not-found",
                f"FEDLORA_BINARY names {environment}, which is not an executable file "
                "(unset it to use the fedlora the wheel installed)",
            )
        return str(named)
    looked = []
    for candidate in _wheel_candidates():
        if _is_executable(candidate):
            return str(candidate)
        looked.append(str(candidate))
    on_path = shutil.which(_NAME, path=path)
    if on_path:
        return on_path
    where = ", ".join(dict.fromkeys(looked)) or "no wheel install found"
    raise BinaryNotFoundError(
        "binary-not-found",
        f"no fedlora executable: FEDLORA_BINARY is not set, the wheel's script is missing ({where}) "
        "and none is on PATH; reinstall the wheel (pip install --force-reinstall fedlora), "
        "or set FEDLORA_BINARY to a fedlora built from source (.build/release/fedlora)",
    )


def find_binary() -> str:
    """The fedlora executable to run (see the module's documentation for the order)."""
    return _find(os.environ.get("FEDLORA_BINARY"), os.environ.get("PATH"))
