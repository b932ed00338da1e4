"""Small text files a user names (the configuration, a tenant mapping, a fleet's phases): read
whole, so each is checked before it is read, and every failure is one error naming the option
and the file."""

from __future__ import annotations

from pathlib import Path

from aicc.errors import InvalidInput

# Larger than any such file written by hand or generated for a trace's tenants; a device or a
# mistaken data file is refused before it fills the memory.
MAX_INPUT_BYTES = 16 * 1024 * 1024


def read_input_file(path: str | Path, where: str, field: str, *,
                    error: type[InvalidInput] = InvalidInput,
                    missing: str = "the file does not exist",
                    folder: str = "is a folder; give a TOML file") -> bytes:
    """The bytes of ``path``; ``where`` (e.g. ``--tenant-map FILE``) starts every message. A
    missing file, a folder, anything but a regular file (a FIFO or a device would block or
    never end), a file over :data:`MAX_INPUT_BYTES` or one that cannot be read (a name too
    long, no permission) is an ``error`` for ``field``."""
    p = Path(path)
    try:
        if not p.exists():
            raise error(f"{where}: {missing}", field=field)
        if p.is_dir():
            raise error(f"{where}: {folder}", field=field)
        if not p.is_file():
            raise error(f"{where}: not a regular file", field=field)
        size = p.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise error(f"{where}: {size:,} bytes; such a file holds at most "
                        f"{MAX_INPUT_BYTES:,}", field=field)
        return p.read_bytes()
    except OSError as exc:
        raise error(f"{where}: cannot read the file ({exc.strerror or exc})",
                    field=field) from None
