"""Tables of samples and their units, for every format's reader (docs/import.md): the generic CSV
(generic_csv.py, through a column mapping) and the vendors' CSVs (phyphox, MetaMotion, Xsens DOT)
are read by the same parser, and a unit, as ``--columns`` takes it or as a header writes it, means
one factor everywhere.

The parser: comma, semicolon or tab separated (the header's most frequent, unless the format says);
with a semicolon or a tab a decimal comma is read too; a byte-order mark, empty lines and lines
starting with ``#`` are skipped; quoted cells are unquoted. numpy reads a whole table in one go;
where it will not, the rows are read one by one to name the line (and the column) that cannot be
read. An empty cell reads as NaN: the reader says where it cannot have one (``Table.filled``)."""
from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clipcore import logrecord as L
from strideclip.errors import ImportFormatError

G_MPS2 = 9.80665  # standard gravity: 1 g in m/s^2
UNITS = {  # what a unit measures -> unit key (as --columns takes it) -> factor to s, g or deg/s
    "t": {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9},
    "accel": {"g": 1.0, "mg": 1e-3, "mps2": 1 / G_MPS2},
    "gyro": {"dps": 1.0, "mdps": 1e-3, "rads": 180 / math.pi},
}
UNIT_KEYS = {  # a unit as a header writes it -> its key
    "s": "s", "ms": "ms", "us": "us", "µs": "us", "ns": "ns",
    "g": "g", "mg": "mg", "m/s^2": "mps2", "m/s²": "mps2", "m/s2": "mps2", "mps2": "mps2",
    "deg/s": "dps", "°/s": "dps", "dps": "dps", "mdps": "mdps", "rad/s": "rads", "rads": "rads",
}
UNIT_TEXT = {"mps2": "m/s^2", "rads": "rad/s", "dps": "deg/s", "mdps": "mdeg/s"}  # a key as messages write it
DELIMITERS = (",", ";", "\t")
DECIMAL_COMMA = re.compile(r"[-+]?\d*,\d+([eE][-+]?\d+)?")
IRREGULAR_START = "# \t"  # a line starting with one of these may be blank or a comment: not a row


def kind_of(unit_key: str | None) -> str | None:
    """"t", "accel" or "gyro": what a unit measures (None for anything else)."""
    return next((kind for kind, table in UNITS.items() if unit_key in table), None)


def factor(unit_key: str) -> float:
    """The factor taking values in ``unit_key`` to s, g or deg/s."""
    return UNITS[kind_of(unit_key)][unit_key]


def split_unit(header: str) -> tuple[str, str | None, str]:
    """``Acceleration x (m/s^2)`` -> (``Acceleration x``, ``mps2``, ``m/s^2``): the name, the unit's
    key (None for none in brackets, or one that is not a time, acceleration or angular rate) and
    the unit as written."""
    m = re.fullmatch(r"\s*(.*?)\s*[(\[]\s*([^()\[\]]+?)\s*[)\]]\s*", header)
    if not m:
        return header.strip(), None, ""
    return m.group(1), UNIT_KEYS.get(m.group(2).strip().lower()), m.group(2).strip()


def looks_like(text: str) -> str | None:
    """The other format a file's first lines look like, for "not the format named" messages."""
    head = text.lstrip("\ufeff")[:2000]
    low = head.lower()
    if head.lstrip().startswith(("{", "[")) and ("arrayacc" in low or "meas" in low):
        return "a Movesense JSON (--format movesense)"
    if head.lstrip().startswith(("{", "[")):
        return "a JSON document, not a table"
    if "packetcounter" in low or "sampletimefine" in low or low.startswith("sep="):
        return "an Xsens DOT export (--format xsens-dot)"
    if re.search(r"epoc?h? \(ms\)", low) and "-axis (" in low:
        return "a MetaMotion / MetaBase export (--format metamotion)"
    if re.search(r'"?time \(s\)"?\s*[,;\t]', low) or re.search(r"\((m/s\^2|rad/s)\)", low):
        return "a phyphox export (--format phyphox)"
    return None


def load(path: Path) -> bytes:
    """A file's bytes, or an ImportFormatError saying why it cannot be read."""
    try:
        return Path(path).read_bytes()
    except IsADirectoryError:
        raise ImportFormatError(f"{path}: a folder, not a file", path=str(path)) from None
    except OSError as e:
        raise ImportFormatError(f"{path}: cannot be read ({e.strerror or e})", path=str(path)) from None


def read_text(data: bytes, name: str, path: str) -> str:
    """A file's bytes as text (UTF-8, a byte-order mark dropped; Latin-1 if not UTF-8), refusing
    a binary file with what it looks like."""
    if data[:4] == b"PK\x03\x04":
        raise ImportFormatError(f"{name}: a zip archive, not a table: unpack it (or give the archive itself where the "
                                f"format takes one)", path=path)
    if data[:5] == L.LOG_MAGIC[:5]:
        raise ImportFormatError(f"{name}: not a text file: a StrideClip session log already (replay, report or export "
                                f"it as it is)", path=path)
    if b"\x00" in data[:4096]:
        raise ImportFormatError(f"{name}: not a text file (binary)", path=path)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def one_file(paths: Sequence[Path], rule: str) -> tuple[Path, str]:
    """The one file a format reads, and its text; ``rule`` says why one ("a Movesense recording
    is one JSON file"), for the message when there are more."""
    if len(paths) != 1:
        raise ImportFormatError(f"{rule}, not {len(paths)}", path=str(paths[0]) if paths else "")
    path = Path(paths[0])
    return path, read_text(load(path), path.name, str(path))


def _number(cell: str, comma: bool) -> float | None:
    cell = cell.strip()
    try:
        return float(cell.replace(",", ".") if comma else cell)
    except ValueError:
        return None


@dataclass
class Table:
    """A delimited table: its ``header`` (None: the file has none, its first row is data), each
    row's ``lines`` in its file (1-based) and, once ``read_all``, ``values`` (rows, columns), NaN
    where a cell is empty or its column is not read. ``read`` gives chosen columns."""

    name: str  # the file as messages name it
    path: str
    header: list[str] | None
    width: int  # cells in the header (or the first row)
    delimiter: str
    decimal_comma: bool
    lines: np.ndarray
    rows: list[str]  # each row's text
    ends_cut: bool  # the text stops mid-line: the last row may be cut short
    values: np.ndarray | None = None

    def where(self, row: int) -> str:
        return f"{self.name}, line {int(self.lines[row])}"

    def label(self, c: int) -> str:
        """Column ``c`` as messages name it: its header, and its number."""
        return f"{self.header[c]!r} (#{c + 1})" if self.header else f"#{c + 1}"

    def filled(self, block: np.ndarray, what: str, rows: np.ndarray | None = None) -> np.ndarray:
        """``block`` (rows of this table: all, or ``rows``), or an ImportFormatError naming the
        first line where it has no value (an empty cell, or NaN)."""
        bad = ~np.isfinite(block) if block.ndim == 1 else ~np.isfinite(block).all(axis=1)
        if bad.any():
            row = int(np.argmax(bad))
            at = self.where(int(rows[row]) if rows is not None else row)
            raise ImportFormatError(f"{at}: an empty (or NaN) cell in {what}", path=self.path)
        return block

    def read(self, columns: Sequence[int]) -> np.ndarray:
        """Columns ``columns`` of every row, (rows, len(columns)): numpy's parser over the whole
        table, else row by row (an ImportFormatError naming the line and the column)."""
        columns = list(columns)
        if not len(self.lines) or not columns:
            return np.zeros((len(self.lines), len(columns)))
        rows = [r.replace(",", ".") for r in self.rows] if self.decimal_comma else self.rows
        out = self._loadtxt(rows, columns)
        if out is None and (filled := _empty_as_nan(rows, self.delimiter)) is not None:
            out = self._loadtxt(filled, columns)
        if out is not None:
            return out
        return self._row_by_row(columns)

    def read_all(self, skip: Sequence[int] = ()) -> Table:
        """This table with ``values``: every column read but ``skip`` (text: NaN)."""
        keep = [c for c in range(self.width) if c not in skip]
        self.values = np.full((len(self.lines), self.width), np.nan)
        self.values[:, keep] = self.read(keep)
        return self

    def _loadtxt(self, rows: list[str], columns: list[int]) -> np.ndarray | None:
        try:  # (numpy reads a list of lines 2-3 times faster than a StringIO, and in a third of the memory)
            out = np.loadtxt(rows, delimiter=self.delimiter, usecols=columns, quotechar='"', ndmin=2,
                             dtype=float, comments=None)
        except ValueError:
            return None
        return out if out.shape == (len(self.lines), len(columns)) else None

    def _row_by_row(self, columns: list[int]) -> np.ndarray:
        out = np.full((len(self.lines), len(columns)), np.nan)
        need = max(columns) + 1
        for r, cells in enumerate(csv.reader(self.rows, delimiter=self.delimiter)):
            last = r == len(self.lines) - 1
            cut = " (the file ends there: cut short?)" if last and (self.ends_cut or len(cells) < self.width) else ""
            if len(cells) < need:
                said = "the header names" if self.header else "the first row has"
                raise ImportFormatError(f"{self.where(r)}: {len(cells)} cells where {said} {self.width}{cut}",
                                        path=self.path)
            for k, c in enumerate(columns):
                cell = cells[c].strip().strip('"')
                if not cell:
                    continue  # NaN: the reader says where a value must be (filled)
                value = _number(cell, self.decimal_comma)
                if value is None:
                    raise ImportFormatError(f"{self.where(r)}: {cell[:40]!r} in column {self.label(c)} is not a "
                                            f"number{cut}", path=self.path)
                out[r, k] = value
        return out


def _empty_as_nan(rows: list[str], d: str) -> list[str] | None:
    """``rows`` with their empty cells written as nan (numpy's parser reads no empty cell), or
    None if they have none."""
    body = "\n".join(rows)
    if d + d not in body and d + "\n" not in body and "\n" + d not in body and not body.startswith(d) \
            and not body.endswith(d):
        return None
    for _ in range(2):  # twice: a run of empty cells shares its delimiters
        body = body.replace(d + d, f"{d}nan{d}")
    body = body.replace(d + "\n", f"{d}nan\n").replace("\n" + d, f"\nnan{d}")
    body = ("nan" if body.startswith(d) else "") + body + ("nan" if body.endswith(d) else "")
    return body.split("\n")


def open_table(text: str, name: str, path: str, *, header_at: int | None = None,
               delimiter: str | None = None) -> Table:
    """The table in ``text``, its cells not yet read (``Table.read``). Its header is line
    ``header_at`` (0-based), or by default the first line that is neither empty nor a comment,
    unless that line is all numbers (then the file has no header and it is the first row). The
    delimiter is that line's most frequent one unless given."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # (the newline that ends the last line)
    if header_at is None:
        k = next((i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")), None)
        if k is None:
            raise ImportFormatError(f"{name}: no lines to read: not a table of samples", path=path)
    elif header_at < len(lines):
        k = header_at
    else:
        raise ImportFormatError(f"{name}: no header line", path=path)
    delimiter = delimiter or max(DELIMITERS, key=lines[k].count)
    if lines[k].count(delimiter) == 0:
        raise ImportFormatError(f"{name}, line {k + 1}: no comma, semicolon or tab: not a table of samples", path=path)
    head = [h.strip() for h in next(csv.reader([lines[k]], delimiter=delimiter), [])]
    has_header = header_at is not None or not all(_number(h, delimiter != ",") is not None for h in head)
    first = k + 1 if has_header else k  # the first row (else the header's line is data)
    rows = lines[first:]
    row_lines = first + 1 + np.arange(len(rows))
    if any(not row or row[0] in IRREGULAR_START for row in rows):  # (rare: kept apart from the usual table)
        kept = [(n, row) for n, row in zip(row_lines.tolist(), rows)
                if row.strip() and not row.lstrip().startswith("#")]
        row_lines, rows = np.array([n for n, _ in kept], int), [row for _, row in kept]
    if not rows:  # (a recording stopped at once: every reader would find nothing to start from)
        raise ImportFormatError(f"{name}: no samples after its header: an empty recording", path=path)
    comma = delimiter != "," and any(DECIMAL_COMMA.fullmatch(c.strip()) for c in (rows or [""])[0].split(delimiter))
    return Table(name, path, head if has_header else None, len(head), delimiter, comma, row_lines, rows,
                 bool(text) and not text.endswith("\n"))


def parse_table(text: str, name: str, path: str, *, header_at: int | None = 0,
                delimiter: str | None = None) -> Table:
    """``open_table`` with every column read (``Table.read_all``)."""
    return open_table(text, name, path, header_at=header_at, delimiter=delimiter).read_all()
