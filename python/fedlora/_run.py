"""Runs the CLI with `--json` and turns its one document into a dict or a FedloraError.

The child gets its own session, so a Ctrl-C on the terminal reaches this process alone, which
forwards one SIGINT, waits for the CLI to remove its temporaries and exit, then re-raises
KeyboardInterrupt: nothing half-written is left, whatever the caller catches.
"""

from __future__ import annotations

import json
import signal
import subprocess
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from ._binary import find_binary
from .errors import (
    BinaryNotFoundError,
    CommandError,
    FedloraError,
    ProtocolError,
    SignalError,
    UsageError,
)

__all__ = ["run_json", "run_text", "SCHEMA_VERSION"]

# The version of the JSON documents this package reads (docs/json.md: fields are only added
# within a version).
SCHEMA_VERSION = 1

_USAGE = 64


def _communicate(argv: Sequence[str]) -> Tuple[int, str, str]:
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except OSError as error:
        raise BinaryNotFoundError(
            "binary-not-found",
            f"cannot run {argv[0]}: {error.strerror or error} (reinstall the fedlora wheel, "
            "or set FEDLORA_BINARY to a fedlora built for this machine)",
            argv=argv,
        ) from None
    try:
        out, err = process.communicate()
    except BaseException:
        # KeyboardInterrupt (or anything else): the CLI removes its temporaries on SIGINT.
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.communicate()
        except BaseException:
            process.kill()
            process.wait()
            raise
        raise
    return process.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def _schema_name(schema: str) -> Tuple[str, int]:
    name, _, version = schema.rpartition("/")
    return name, int(version) if version.isdigit() else -1


def _error_line(stderr: str) -> str:
    """The message of the CLI's last `fedlora: error: ...` line ("" when there is none)."""
    lines = [line for line in stderr.splitlines() if line.startswith("fedlora: error: ")]
    return lines[-1][len("fedlora: error: ") :] if lines else ""


def run_json(
    arguments: Sequence[str],
    *,
    schemas: Sequence[str],
    parse: Optional[Callable[[Dict[str, Any]], Any]] = None,
    check: bool = True,
) -> Dict[str, Any]:
    """Runs `fedlora ARGUMENTS --json`; returns its document when `ok` (or, with `check=False`,
    a full document with `ok: false`). `schemas` are the document names the command may print
    (without the version), checked with the version; `parse(document)` builds the result a
    CommandError carries when a failed run still printed its full document."""
    # Right after the subcommand: after a `--` it would be a path.
    argv = [find_binary(), *arguments[:1], "--json", *arguments[1:]]
    status, out, err = _communicate(argv)
    if status < 0 or status in (130, 143):
        number = -status if status < 0 else status - 128
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
        raise SignalError("signal", f"fedlora was ended by {name}", exit_status=status, stderr=err, argv=argv)
    try:
        document = json.loads(out)
        if not isinstance(document, dict):
            raise ValueError("not an object")
    except ValueError:
        reported = _error_line(err)
        if status == 1 and reported:
            # A failure the CLI reports on stderr alone: BLAS/LAPACK that cannot be loaded ends
            # the process from the loader, before any document is printed.
            raise CommandError("failed", reported, exit_status=status, stderr=err, argv=argv) from None
        detail = err.strip().splitlines()[-1] if err.strip() else f"{out[:200]!r}"
        raise ProtocolError(
            "bad-document",
            f"fedlora (exit status {status}) printed no JSON document: {detail}",
            exit_status=status,
            stderr=err,
            argv=argv,
        ) from None
    schema = document.get("schema")
    name, version = _schema_name(schema) if isinstance(schema, str) else ("", -1)
    if name not in schemas or version != SCHEMA_VERSION:
        raise ProtocolError(
            "bad-schema",
            f"fedlora printed a {schema!r} document; this package reads "
            f"{', '.join(s + '/' + str(SCHEMA_VERSION) for s in schemas)} (install matching versions "
            "of the fedlora package and binary)",
            exit_status=status,
            document=document,
            stderr=err,
            argv=argv,
        )
    if status == 0 and document.get("ok") is True:
        return document
    error: Dict[str, Any] = document["error"] if isinstance(document.get("error"), dict) else {}
    code = str(error.get("code", "usage" if status == _USAGE else "failed"))
    message = str(error.get("message", err.strip() or f"exit status {status}"))
    if status == _USAGE:
        raise UsageError(code, message, exit_status=status, document=document, stderr=err, argv=argv)
    # A failed check (inspect --expect, verify, unreadable modules) still prints its whole result.
    full = set(document) - {"schema", "ok", "warnings", "error"}
    if status == 1 and full and not check:
        return document
    if status == 1:
        result = parse(document) if full and parse else None
        raise CommandError(code, message, result=result, exit_status=status, document=document, stderr=err, argv=argv)
    raise FedloraError(code, message, exit_status=status, document=document, stderr=err, argv=argv)


def run_text(arguments: Sequence[str], *, check: bool = True) -> Tuple[int, str, str]:
    """Runs `fedlora ARGUMENTS` as it is (no `--json`): (exit status, stdout, stderr), for the
    outputs the API does not model (`--csv`, `--markdown`, `--version --verbose`). With `check`,
    a non-zero status raises the FedloraError of that status, with the CLI's message."""
    argv = [find_binary(), *arguments]
    status, out, err = _communicate(argv)
    if status != 0 and check:
        message = _error_line(err) or err.strip() or f"exit status {status}"
        if status == _USAGE:
            raise UsageError("usage", message, exit_status=status, stderr=err, argv=argv)
        if status == 1:
            raise CommandError("failed", message, exit_status=status, stderr=err, argv=argv)
        raise SignalError(
            "signal", f"fedlora ended with status {status}: {message}", exit_status=status, stderr=err, argv=argv
        )
    return status, out, err
