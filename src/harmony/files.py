"""Output files: checked before any work, written atomically, never overwritten without force.

`check_writable` is the one check every writer and every command runs on its destinations
before the work that produces them starts (so a long export or inference never ends in "cannot
write"). `atomic_output` writes under a temporary name in the destination folder, then renames:
a failed or interrupted write leaves no partial file behind and never replaces an existing one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from harmony.errors import HarmonyError


def check_writable(path: str | os.PathLike, force: bool = False) -> Path:
    """Raise HarmonyError unless `path` can be written now: it is not a folder, it does not exist
    (or `force`), and its folder exists or can be created and accepts new files (probed with a
    temporary file, which is removed). Returns `path` as a Path; creates nothing."""
    path = Path(path)
    if path.is_dir():
        raise HarmonyError(f"Cannot write {path}: it is a folder. Pass a file name.")
    if path.exists() and not force:
        raise HarmonyError(
            f"{path} already exists; refusing to overwrite it. Pass --force to replace it, or "
            "choose another output path."
        )
    folder = path.absolute().parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise HarmonyError(f"Cannot write {path}: {folder} is a file, not a folder.")
    probe = folder / f".harmony-write-probe.{secrets.token_hex(6)}.tmp"
    try:
        _create_exclusive(probe)
        probe.unlink()
    except OSError as exc:
        raise HarmonyError(
            f"Cannot write {path}: {folder} does not accept new files ({exc.strerror or exc}). "
            "Choose another output path."
        ) from None
    return path


def _create_exclusive(path: Path) -> None:
    """Create the empty file `path`, failing if it exists."""
    # O_EXCL with mode 0o666: a fresh file with the umask's usual permissions.
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on a clean exit it is renamed to `path`.

    `path` is checked with `check_writable` first; missing parent folders are created. The
    temporary file is removed if the block raises.

    Raises:
        HarmonyError: `path` exists (without `force`), is a folder, or cannot be written.
    """
    path = check_writable(path, force)
    temp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _create_exclusive(temp)
    except OSError as exc:
        raise HarmonyError(f"Cannot write {path}: {exc.strerror or exc}.") from None
    try:
        yield temp
        os.replace(temp, path)
    except OSError as exc:
        raise HarmonyError(f"Cannot write {path}: {exc.strerror or exc}.") from None
    finally:
        temp.unlink(missing_ok=True)  # only left behind by a failure: os.replace moved it


def write_bytes_atomic(path: str | os.PathLike, data: bytes, force: bool = False) -> Path:
    """Write `data` to `path` atomically (see `atomic_output`); returns `path`."""
    with atomic_output(path, force) as temp, open(temp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return Path(path)


CACHE_DIR_ENV = "HARMONY_CACHE_DIR"


def cache_dir(kind: str) -> Path:
    """`$HARMONY_CACHE_DIR/<kind>`, default `$XDG_CACHE_HOME/harmony/<kind>` or
    `~/.cache/harmony/<kind>`; created if missing."""
    root = os.environ.get(CACHE_DIR_ENV)
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "harmony"
    path = Path(root) / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
