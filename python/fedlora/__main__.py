"""`python -m fedlora ARGS`: runs the fedlora binary this package finds, as `fedlora ARGS`."""

from __future__ import annotations

import os
import sys

from ._binary import find_binary
from .errors import FedloraError


def main() -> None:
    try:
        binary = find_binary()
    except FedloraError as error:
        print(f"fedlora: error: {error.message}", file=sys.stderr)
        sys.exit(1)
    os.execv(binary, [binary, *sys.argv[1:]])


if __name__ == "__main__":
    main()
