"""Output files: checked before any work starts, written atomically, all or nothing.

Each file is written to a temporary name in its target folder (`.NAME.XXXXXXXX.SUFFIX`) and
renamed into place. `check_output` refuses, before a command loads anything, an output path that
cannot be written; `write_all_atomically` writes several outputs so that a failure leaves none
of them behind. Write failures become one-line `OutputError`s naming the option and the path.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from workbench.errors import OutputError

Writer = Callable[[str], object]  # writes the file at the temporary path it is given


def _nearest_existing(path: Path) -> Path:
    for folder in (path, *path.parents):
        if folder.exists() or folder.is_symlink():
            return folder
    return Path.cwd()


def _probe_writable(folder: Path, what: str) -> None:
    """Create and remove a file in `folder` (os.access says yes to root on read-only mounts)."""
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=".workbench-probe.")
    except OSError as error:
        raise OutputError(f"{what}: cannot write in {folder} ({error.strerror})") from None
    os.close(handle)
    os.unlink(probe)


def check_output(
    text: str | os.PathLike[str] | None, option: str, *, folder: bool = False
) -> Path | None:
    """The output path `option` names, refused now with a one-line error if it cannot be written.

    A file path must not be a folder; a `folder=True` path must not be a file; no part of the
    path above it may be a file; the nearest existing folder must accept new files. Missing
    folders are fine (they are created when the output is written). None passes through.
    """
    if text is None:
        return None
    if not str(text).strip():
        kind = "folder" if folder else "file name"
        raise OutputError(f"{option}: empty path; give a {kind}")
    path = Path(text).expanduser()
    what = f"{option} {text}"
    if folder and path.exists() and not path.is_dir():
        raise OutputError(f"{what}: is a file, not a folder; give a folder for the output files")
    if not folder and path.is_dir():
        raise OutputError(f"{what}: is a folder; give a file name, e.g. {path / 'results.json'}")
    existing = _nearest_existing(path if folder else path.parent)
    if not existing.is_dir():
        raise OutputError(f"{what}: {existing} is a file, not a folder; choose another path")
    _probe_writable(existing, what)
    return path


def check_distinct(outputs: Sequence[tuple[str | None, str]]) -> None:
    """Refuse two output options (`(path, option)`, None: not given) naming the same path:
    one would overwrite the other, or a file would be asked to be a folder."""
    seen: dict[Path, str] = {}
    for text, option in outputs:
        if text is None:
            continue
        path = Path(text).expanduser().resolve()
        if path in seen:
            raise OutputError(f"{seen[path]} and {option}: both name {text}; give each its own")
        seen[path] = option


def write_all_atomically(outputs: Sequence[tuple[Path, Writer]]) -> None:
    """Write every `(path, write)` output or none: each `write(temporary)` first, then renames.

    Missing folders are created (and removed again on failure when still empty). A temporary
    name keeps its target's suffix (Keras chooses the format by it). An `OSError` becomes an
    `OutputError` naming the path.
    """
    created: list[Path] = []
    temporaries: list[tuple[str, Path]] = []
    renamed: list[Path] = []
    current = Path()
    try:
        for path, write in outputs:
            current = Path(path)
            for folder in reversed([current.parent, *current.parent.parents]):
                if not folder.exists():
                    folder.mkdir()
                    created.append(folder)
            handle, temporary = tempfile.mkstemp(
                dir=current.parent, prefix=f".{current.name}.", suffix=current.suffix
            )
            os.close(handle)
            temporaries.append((temporary, current))
            write(temporary)
            os.chmod(temporary, 0o644)
        for temporary, path in temporaries:
            current = path
            os.replace(temporary, path)
            renamed.append(path)
    except BaseException as error:
        for temporary, _ in temporaries:
            Path(temporary).unlink(missing_ok=True)
        for path in renamed:
            path.unlink(missing_ok=True)
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(error, OSError):
            reason = error.strerror or str(error)
            raise OutputError(f"{current}: cannot write ({reason})") from None
        raise


def write_atomically(path: Path, write: Writer) -> None:
    """Call `write(temporary_path)`, then rename it to `path`; on failure nothing is left."""
    write_all_atomically([(Path(path), write)])


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    write_all_atomically([(Path(path), bytes_writer(data))])


def bytes_writer(data: bytes) -> Writer:
    """A writer for `write_all_atomically` that writes `data`."""
    return lambda temporary: Path(temporary).write_bytes(data)
