"""Output files: checked before any work, written atomically, never overwritten without force.

`check_writable` is the one check every writer and every command runs on its destinations
before the work that produces them starts (so a long export or inference never ends in "cannot
write"), with `check_not_an_input` (an output is never one of the command's inputs) and
`check_free_space` where the size is predictable. `atomic_output` writes under a temporary name
in the destination folder, then renames: a failed or interrupted write (Ctrl-C, SIGTERM: the
commands turn it into an exit that runs the clean-up) leaves no partial file behind and never
replaces an existing one. A process killed outright (kill -9, a power cut) cannot clean up: its
temporary is named after its host, PID namespace and process id
(`.NAME.<host>-<pidns>.<pid>.<hex>.tmp`), and the first write of a process into a folder removes
those of its own host and namespace whose process is gone (once per folder and process). Those of
other hosts or containers sharing the folder (shards of one batch on a shared volume) are left
alone: their process ids mean nothing here.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import secrets
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

from harmony.errors import HarmonyError

# The random part of a temporary's name `.NAME.WRITER.PID.HEX.tmp` (HEX: twice as many digits).
TEMP_TOKEN_BYTES = 6


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
    probe = folder / f".harmony-write-probe.{secrets.token_hex(TEMP_TOKEN_BYTES)}.tmp"
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
    temp = temporary_path(path, os.getpid())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _sweep_once(path.parent)
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


def temporary_path(path: Path, pid: int) -> Path:
    """A fresh temporary name for `path` of the process `pid` of this host and PID namespace."""
    token = secrets.token_hex(TEMP_TOKEN_BYTES)
    return path.parent / f".{path.name}.{_writer()}.{pid}.{token}.tmp"


@functools.cache
def _writer() -> str:
    """This host and PID namespace, as a file-name part: where a process id can be looked up."""
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:63] or "host"
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{host}-{namespace}"


# Folders swept of stale temporaries by this process (`_sweep_once`).
_SWEPT: set[Path] = set()


def _sweep_once(folder: Path) -> None:
    """Remove the temporaries `atomic_output` left in `folder` in processes that are gone
    (killed before they could clean up); those of live processes stay. Once per folder and
    process: a run writing N files into one folder lists it once, not N times. Best effort: a
    temporary that cannot be removed (another writer swept it, no permission) stays."""
    key = folder.resolve()
    if key in _SWEPT:
        return
    _SWEPT.add(key)
    writer = re.escape(_writer())
    pattern = re.compile(rf"\..+\.{writer}\.(\d+)\.[0-9a-f]{{{2 * TEMP_TOKEN_BYTES}}}\.tmp")
    for candidate in folder.glob(".*.tmp"):
        match = pattern.fullmatch(candidate.name)
        if match is None or _process_alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            candidate.unlink()


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def check_not_an_input(output: str | os.PathLike, inputs: dict[str, str | os.PathLike]) -> None:
    """Raise HarmonyError when `output` is the same file as one of `inputs` ({what: path}),
    with or without --force: writing it would destroy the input."""
    for what, path in inputs.items():
        try:
            same = os.path.samefile(output, path)
        except OSError:  # one of them does not exist: not the same file
            continue
        if same:
            raise HarmonyError(
                f"{output} is the {what}: writing there would destroy it (--force does not "
                "allow that). Choose another output path."
            )


def check_free_space(path: str | os.PathLike, needed_bytes: int) -> None:
    """Raise HarmonyError when the folder `path` will be written in has less free space than
    `needed_bytes` (checked before the work, where the size is predictable)."""
    folder = Path(path).absolute().parent
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise HarmonyError(
            f"Cannot write {path}: it needs about {needed_bytes / 2**20:.0f} MiB, and {folder} "
            f"has {free / 2**20:.0f} MiB free. Free space or choose another output path."
        )


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
    `~/.cache/harmony/<kind>`; created if missing.

    Raises:
        HarmonyError: the folder cannot be created or written (it names the folder and the
            variable that moves it).
    """
    root = os.environ.get(CACHE_DIR_ENV)
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "harmony"
    path = Path(root) / kind
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(13, "not writable")
    except OSError as exc:
        raise HarmonyError(
            f"Cannot use the cache folder {path} ({exc.strerror or exc}); set {CACHE_DIR_ENV} to "
            "a writable folder."
        ) from None
    return path


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
