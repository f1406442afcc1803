"""The exceptions of the fedlora API: the CLI's failure, carried with its code and message.

Every failure of a call raises a `FedloraError`: `UsageError` for what the arguments alone reveal
(the CLI's exit status 64, or a check made here before the CLI runs), `CommandError` for a run
that failed (exit status 1), and the subclasses below for a binary that is missing, a document
that is not the contract, or a run ended by a signal. Never a bare `CalledProcessError` or a
JSON decode error.
"""

from __future__ import annotations

# typing is not imported at run time: it costs more than the rest of `import fedlora`.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Mapping, Optional, Sequence

__all__ = [
    "FedloraError",
    "UsageError",
    "CommandError",
    "BinaryNotFoundError",
    "ProtocolError",
    "SignalError",
]


class FedloraError(Exception):
    """A fedlora run that did not do what it was asked.

    `code` is the CLI's stable error code (`usage`, `output-is-input`, `truncated`,
    `expectation-failed`, ... docs/json.md), `message` its message; `exit_status` the CLI's exit
    status (None when the CLI did not run); `document` the whole JSON document it printed (None
    when there was none); `stderr` what it printed there; `argv` the command line.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        exit_status: Optional[int] = None,
        document: Optional[Mapping[str, Any]] = None,
        stderr: str = "",
        argv: Sequence[str] = (),
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.exit_status = exit_status
        self.document = document
        self.stderr = stderr
        self.argv = list(argv)


class UsageError(FedloraError):
    """What the arguments alone reveal: a refused option or combination, a wrong type, a weight
    count that does not match the clients, an output that is an input (the CLI's exit status 64).
    Raised before anything is written."""


class CommandError(FedloraError):
    """A run that failed (exit status 1): invalid input, a failed check, an output that could not
    be written. When the CLI still printed its full result (a failed `inspect --expect`, a
    `verify` that found problems, unreadable modules), `result` holds it parsed; else None."""

    def __init__(self, code: str, message: str, *, result: Any = None, **kwargs: Any) -> None:
        super().__init__(code, message, **kwargs)
        self.result = result


class BinaryNotFoundError(FedloraError):
    """No fedlora executable was found (or the one named cannot run); the message says where it
    was looked for and how to fix it."""


class ProtocolError(FedloraError):
    """The CLI's output is not the document this package reads: not JSON, another schema, or a
    schema version it does not know (upgrade the package, or the binary)."""


class SignalError(FedloraError):
    """The CLI was ended by a signal this process did not send (exit status 130 / 143 or killed);
    the CLI removes its temporaries on SIGINT and SIGTERM."""
