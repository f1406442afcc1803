"""Python values -> CLI arguments, checked first: a wrong type is a UsageError (code `usage`, as
the CLI's) before the CLI runs. The values the CLI itself judges (method names, weight counts,
option combinations) are passed on, so the refusals and their messages are the CLI's own."""

from __future__ import annotations

import numbers
import os
from typing import Any, List, Optional, Sequence, Union

from .errors import UsageError

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["PathLike", "path", "paths", "option", "flag", "number_list", "integer", "real", "text"]


def path(value: Any, name: str) -> str:
    if isinstance(value, (str, os.PathLike)) and not isinstance(value, bytes):
        text = os.fspath(value)
        if isinstance(text, str) and text:
            return text
    raise UsageError("usage", f"{name} must be a path (str or os.PathLike), got {_describe(value)}")


def paths(value: Any, name: str) -> List[str]:
    if isinstance(value, (str, bytes, os.PathLike)):
        raise UsageError("usage", f"{name} must be a list of paths, got the single path {value!r}: give [{value!r}]")
    try:
        items = list(value)
    except TypeError:
        raise UsageError("usage", f"{name} must be a list of paths, got {_describe(value)}") from None
    if not items:
        raise UsageError("usage", f"{name} is empty: give at least one path")
    return [path(item, f"{name}[{index}]") for index, item in enumerate(items)]


def text(value: Any, name: str) -> str:
    if isinstance(value, str):
        return value
    raise UsageError("usage", f"{name} must be a string, got {_describe(value)}")


def texts(value: Any, name: str) -> List[str]:
    """A list of strings (a lone string is one item: `waive="clients"`)."""
    if isinstance(value, str):
        return [value]
    try:
        return [text(item, f"{name}[{index}]") for index, item in enumerate(list(value))]
    except TypeError:
        raise UsageError("usage", f"{name} must be a list of strings, got {_describe(value)}") from None


def integer(value: Any, name: str) -> int:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    raise UsageError("usage", f"{name} must be an integer, got {_describe(value)}")


def real(value: Any, name: str) -> float:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise UsageError("usage", f"{name} must be a number, got {_describe(value)}")


def number_list(value: Any, name: str) -> str:
    """A list of numbers as the CLI reads it (`1,2,3`; floats in their shortest exact form)."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise UsageError("usage", f"{name} must be a list of numbers, got {_describe(value)}")
    items = []
    for index, item in enumerate(value):
        if isinstance(item, numbers.Integral) and not isinstance(item, bool):
            items.append(str(int(item)))
        elif isinstance(item, numbers.Real) and not isinstance(item, bool):
            items.append(repr(float(item)))
        else:
            raise UsageError("usage", f"{name}[{index}] must be a number, got {_describe(item)}")
    if not items:
        raise UsageError("usage", f"{name} is empty")
    return ",".join(items)


def option(arguments: List[str], flag_name: str, value: Optional[str]) -> None:
    # `--flag=value`: a value starting with '-' is never read as another option.
    if value is not None:
        arguments.append(f"{flag_name}={value}")


def flag(arguments: List[str], flag_name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise UsageError(
            "usage", f"{flag_name.lstrip('-').replace('-', '_')} must be True or False, got {_describe(value)}"
        )
    if value:
        arguments.append(flag_name)


def positional(arguments: List[str], values: Sequence[str]) -> List[str]:
    # After `--`, a path starting with '-' is a path.
    return arguments + ["--", *values]


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:120]
