"""``aicc`` and ``python -m aicc``. The command's modules take most of a second to import: an
interrupt (Ctrl-C) meanwhile ends the command quietly with status 130, as one while it runs
does, instead of printing the import's traceback."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from aicc.cli import main as run
    except KeyboardInterrupt:
        sys.exit(130)
    run()


if __name__ == "__main__":
    main()
