"""One root for every error the host raises, with subclasses that carry what went wrong."""
from __future__ import annotations

import importlib
import shlex
from pathlib import Path
from types import ModuleType


class StrideClipError(Exception):
    """Root of every StrideClip host error."""


# --- the stream: packets, frames and log records (strideclip.stream) --------------------------

class FrameError(StrideClipError):
    """A packet or frame could not be decoded; ``offset`` is the byte where it went wrong."""

    def __init__(self, message: str, *, offset: int = 0):
        super().__init__(message)
        self.offset = offset


class TruncatedFrameError(FrameError):
    """The packet or frame ends before its fields do."""


class CorruptFrameError(FrameError):
    """The frame's CRC does not match its bytes."""


class UnsupportedVersionError(FrameError):
    """The packet was written by a protocol version this host does not speak."""


class UnknownFrameTypeError(FrameError):
    """The packet type (or command opcode) is not one the protocol defines."""


class FrameLengthError(FrameError):
    """The packet's length disagrees with its type or its sample count."""


class FrameValueError(FrameError):
    """A field holds a value the protocol forbids (zero sample count, unknown side, ...)."""


class RecordError(StrideClipError):
    """A log record is well framed but its content breaks the log's schema (strideclip.stream.schema)."""


class LogFormatError(StrideClipError):
    """A file is not a StrideClip session log, or its header cannot be read; ``path`` names it."""

    def __init__(self, message: str, *, path: str = ""):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path


class NothingToAnalyse(LogFormatError):
    """A log with no samples, or none that can be read (no intact HELLO to say how)."""


class UnsupportedLogVersionError(LogFormatError):
    """The log was written in a log format version this host does not read."""

    def __init__(self, message: str, *, path: str = "", version: int = 0):
        super().__init__(message, path=path)
        self.version = version


# --- links (strideclip.link) ------------------------------------------------------------------

class TransportError(StrideClipError):
    """A link could not be opened or was lost; ``port`` names it."""

    def __init__(self, message: str, *, port: str = ""):
        super().__init__(message)
        self.port = port


class CommandError(TransportError):
    """The clip refused a command (or the host did, before sending): ``code`` and its name."""

    def __init__(self, message: str, *, port: str = "", code: int = 0, detail: int = 0):
        super().__init__(message, port=port)
        self.code = code
        self.detail = detail


class CommandTimeout(TransportError):
    """The clip did not answer a command in time."""


class BrokerUnavailable(TransportError):
    """The MQTT broker could not be reached, or refused the credentials, when a command started
    (strideclip.link.mqtt): refused before any work, exit 2 (docs/team.md)."""


# --- settings and what is not built -----------------------------------------------------------

class ConfigError(StrideClipError):
    """A configuration value is missing or out of range; ``key`` names it."""

    def __init__(self, message: str, *, key: str = ""):
        super().__init__(message)
        self.key = key


class NotBuiltError(StrideClipError):
    """A command the product will have, not built yet."""


class MissingExtra(StrideClipError):
    """A command needs a part of StrideClip installed as an extra (pyproject.toml; a gateway's
    light install leaves them out, docs/team.md): one line naming the ``pip install``, exit 2."""

    def __init__(self, what: str, extra: str, why: str = ""):
        because = f" ({why.splitlines()[0][:120]})" if why else ""
        super().__init__(f"{what} is not installed{because}: this needs pip install 'strideclip[{extra}]'")
        self.what, self.extra = what, extra


def needs_extra(module: str, extra: str, what: str | None = None) -> ModuleType:
    """``module`` imported, or MissingExtra naming the extra that installs it (and ``what`` is
    missing, by default the module's package): the one way the host imports what only some
    commands need (bokeh, matplotlib, pyarrow, dask)."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtra(what or module.split(".")[0], extra, str(e)) from None


# --- what is kept (strideclip.store) ----------------------------------------------------------

class HistoryError(StrideClipError):
    """The history database cannot be used (wrong file, newer schema, busy, unknown session)."""


class HistoryDamaged(HistoryError):
    """The history database is damaged: the message names the file, the problem, and the way out
    (``--db`` named unless the file is the ``default_path``)."""

    def __init__(self, path: Path, problem: str, *, first_page: bool = False,
                 default_path: Path | None = None):
        self.path, self.problem = path, problem
        what = ("not a StrideClip history database, or a history whose first page is damaged" if first_page
                else "the history database is damaged")
        db = "" if path == default_path else f" --db {shlex.quote(str(path))}"
        super().__init__(f"{path}: {what} ({problem}). {'If it is your history: ' if first_page else ''}"
                         f"`strideclip history repair{db}` rebuilds it from the logs it catalogued (the logs are not "
                         f"touched, and this file is kept as {path.name}.damaged-<time>).")


class LogSyncError(StrideClipError):
    """A log could not be fetched whole, or its copy would overwrite a different file."""


class ArchiveError(StrideClipError):
    """An archive cannot be re-analysed (strideclip.store.archive): no such folder, an output made
    with other settings, a Dask scheduler unreachable (Dask not installed: MissingExtra)."""


# --- views (strideclip.views) -----------------------------------------------------------------

class ExportError(StrideClipError):
    """A session cannot be exported: an unknown format, a file that exists, a log with no samples."""


# --- the clip as a device (strideclip.device) -------------------------------------------------

class DeviceError(StrideClipError):
    """The clip cannot be reached or refused a file; ``port`` names where we looked."""

    def __init__(self, message: str, *, port: str = ""):
        super().__init__(message)
        self.port = port


# --- evaluation (strideclip.evaluation) -------------------------------------------------------

class DataSetError(StrideClipError):
    """A data set is missing or does not look as its README says; ``path`` names the place."""

    def __init__(self, message: str, *, path: str = ""):
        super().__init__(message)
        self.path = path


# --- other sensors' recordings (strideclip.imports) ------------------------------------------

class ImportFormatError(StrideClipError):
    """A recording is not the format it was named as, or cannot become a session: ``path`` names
    the file, the message says what is wrong (a missing column, mixed units, time that runs
    backwards, a rate too low for step detection)."""

    def __init__(self, message: str, *, path: str = ""):
        super().__init__(message)
        self.path = path


# --- what a command was told to write to (strideclip.stream.outputs) --------------------------

class OutputError(StrideClipError):
    """A place a command was told to write cannot take it: a missing or read-only folder, a file
    that exists (without ``--force``), a port in use. Said before any work starts; ``path`` names
    it. The command line exits 2 on it, as on any refused option (docs/cli.md)."""

    def __init__(self, message: str, *, path: str = ""):
        super().__init__(message)
        self.path = path


class PortInUse(OutputError):
    """The dashboard's port is taken (another dashboard, another server); ``path`` is host:port."""


class HistoryNotWritable(HistoryError, OutputError):
    """The history's folder (or file) cannot be written: a HistoryError to those who read the
    history, a refused output (exit 2) on the command line."""
