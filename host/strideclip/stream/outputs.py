"""Where commands open what they write: one place (issue #23).

- **Checked before any work starts**: the folder exists and can be written, the file does not
  exist unless ``--force`` was given (``check_file``, ``check_folder``); a refusal is one
  ``OutputError`` naming the path and what to do.
- **Written under a temporary name beside the file and renamed into place when complete**
  (``OutputFile`` and ``writing``): a failed or interrupted command (Ctrl-C included) leaves
  nothing half-made, and what was there before is untouched.

Session logs recorded live (``strideclip.stream.logwriter``) are not written this way: they are
crash-safe append logs, kept as far as they got when a run ends badly, so only their folder is
checked here. This module sits in the lowest stage because the simulator (``sim.write_log``)
writes through it as well as the views, the history and the command line.
"""
from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from strideclip.errors import OutputError


def folder_problem(folder: str | os.PathLike) -> str | None:
    """Why files cannot be made in ``folder``, or None when they can. Writability is tried by
    making (and removing) a file: permissions, ACLs, read-only mounts and root all answer that
    truthfully, where ``os.access`` does not."""
    folder = Path(folder)
    try:
        if not folder.is_dir():
            existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
            if existing is not None and not existing.is_dir():
                return f"{existing} is a file, not a folder"
            return f"the folder {folder} does not exist"
    except OSError as e:  # a folder on the way this user may not look into
        return f"the folder {folder} cannot be reached ({e.strerror})"
    try:  # a file with no name (O_TMPFILE on Linux): Ctrl-C at any moment leaves nothing behind
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        return f"the folder {folder} is not writable ({e.strerror})"
    return None


def what_to_do(problem: str, option: str) -> str:
    """The way out of a ``folder_problem`` (or a read-only file) given by ``option``."""
    if "does not exist" in problem:
        return f"create it or choose another {option}"
    if "not writable" in problem or "read-only" in problem:
        return f"make it writable or choose another {option}"
    return f"choose another {option}"


def check_file(path: str | os.PathLike, *, option: str = "-o", force: bool = False, can_force: bool = True,
               source: str | os.PathLike | None = None) -> Path:
    """``path`` if a command may write it: its folder exists and is writable, and it does not
    exist unless ``force``. ``option`` names the option that gave it, for the message;
    ``can_force``: the command offers ``--force`` (a live recording is never replaced);
    ``source``: the file the command reads, never replaced, ``force`` or not."""
    path = Path(path)
    if problem := folder_problem(path.parent):
        raise OutputError(f"{path}: {problem}: {what_to_do(problem, option)}", path=str(path))
    if path.is_dir():
        raise OutputError(f"{path} is a folder: give {option} a file name", path=str(path))
    if source is not None and path.exists() and os.path.samefile(path, source):
        raise OutputError(f"{path} is a file this command reads: choose another {option}", path=str(path))
    if (path.exists() or path.is_symlink()) and not force:
        todo = f"add --force to replace it, or choose another {option}" if can_force else f"choose another {option}"
        raise OutputError(f"{path} exists: {todo}", path=str(path))
    return path


def check_folder(path: str | os.PathLike, *, option: str = "--out", new: bool = False) -> Path:
    """``path`` if a command may write files in it: an existing, writable folder, or one that
    can be made in an existing, writable folder (it is not made here). ``new``: it must not
    exist yet."""
    path = Path(path)
    try:
        exists, is_dir = path.exists(), path.is_dir()
    except OSError as e:  # a folder on the way this user may not look into
        raise OutputError(f"{path} cannot be reached ({e.strerror}): choose another {option}", path=str(path)) from None
    if exists and not is_dir:
        raise OutputError(f"{path} is a file, not a folder: choose another {option}", path=str(path))
    if exists and new:
        raise OutputError(f"{path} exists: choose a new folder for {option}", path=str(path))
    tried = path if exists else path.parent
    problem = folder_problem(tried)
    if problem:
        where = "" if tried == path else f"{path}: "  # the problem names the folder itself
        raise OutputError(f"{where}{problem}: {what_to_do(problem, option)}", path=str(path))
    return path


class OutputFile:
    """A file a command writes, checked when made (``check_file``); write it inside ``writing``.
    Its temporary name is hidden beside it and keeps its suffix (tools that go by the suffix,
    such as matplotlib's savefig, still know the format)."""

    def __init__(self, path: str | os.PathLike, *, option: str = "-o", force: bool = False,
                 source: str | os.PathLike | None = None):
        self.path = check_file(path, option=option, force=force, source=source)
        self.option, self.force = option, force
        self.part = self.path.with_name(f".{self.path.stem}.{secrets.token_hex(4)}.part{self.path.suffix}")

    def beside(self, path: str | os.PathLike) -> OutputFile:
        """Another file written with this one (a sidecar): same option, same ``force``."""
        return OutputFile(path, option=self.option, force=self.force)

    def commit(self) -> None:
        """Put the written file in place: replacing what is there only with ``force``."""
        if self.force:
            os.replace(self.part, self.path)
            return
        try:  # a hard link refuses a file that appeared since the check, where a rename would replace it
            os.link(self.part, self.path)
        except FileExistsError:
            raise OutputError(f"{self.path} exists: add --force to replace it, or choose another {self.option}",
                              path=str(self.path)) from None
        except OSError:  # a file system without hard links (FAT on a stick): the check made up front stands
            os.replace(self.part, self.path)
            return
        os.unlink(self.part)

    def __repr__(self) -> str:
        return f"OutputFile({str(self.path)!r}, force={self.force})"


def as_output(target: str | os.PathLike | OutputFile, *, option: str = "-o", force: bool = False) -> OutputFile:
    """``target`` as an OutputFile (checked now unless it already is one)."""
    return target if isinstance(target, OutputFile) else OutputFile(target, option=option, force=force)


@contextmanager
def writing(*outputs: OutputFile) -> Iterator[tuple[Path, ...]]:
    """The temporary paths to write ``outputs`` to; each renamed into place when the block ends
    well, all removed if it fails or is interrupted (KeyboardInterrupt too)."""
    try:
        yield tuple(o.part for o in outputs)
        for o in outputs:
            o.commit()
    finally:
        for o in outputs:
            o.part.unlink(missing_ok=True)
