"""Streaming reads of the files sellers bring: XLSX sheets, CSV/TSV tables, JSON lines.

Nothing here loads a whole file: rows come from generators over a buffered text
stream or over openpyxl's read-only sheet parser, so memory stays flat however
long the file is. Every row carries the number a person sees in Excel or an
editor, and every cell comes out as clean text, whatever wrapper the exporting
tool put around it. What the rows *mean* is :mod:`app.imports.formats`' job.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import islice
from types import TracebackType
from typing import Any, BinaryIO, Final, Literal, Self

FileInput = str | os.PathLike[str] | BinaryIO
"""A path, or a seekable binary file object (left open for its owner to close)."""

XLSX_MAGIC: Final = b"PK\x03\x04"
_OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the pre-2007 .xls container
SAMPLE_BYTES: Final = 1 << 20
"""How much of a text file is read up front to choose its encoding and delimiter."""

DELIMITERS: Final = (",", "\t")

# str.strip() already covers Unicode whitespace (tab, U+3000, NBSP); the BOM and a
# zero-width space are what concatenated or hand-edited files add on top.
_BLANKS: Final = " \t\r\n\v\f\u3000\u00a0\u200b\ufeff"
_NEEDS_CLEANING: Final = frozenset(_BLANKS + "='")


class ReadError(Exception):
    """The file cannot be read at all: the import refuses it whole.

    ``code`` is a machine word for an API answer: ``old_xls``, ``not_xlsx``,
    ``empty_workbook``, ``encoding`` or ``bad_csv`` here; :class:`FormatError`
    adds its own.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a read has got: enough for a progress bar with an ETA.

    ``unit`` is ``bytes`` for text files (``total`` is the file size) and ``rows``
    for workbooks (``total`` is an estimate from a count of the sheet's rows, or
    None when unknown).
    """

    done: int
    total: int | None
    unit: Literal["bytes", "rows"]

    @property
    def fraction(self) -> float | None:
        """``done / total`` between 0 and 1, or None when the total is unknown."""
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


@dataclass(frozen=True, slots=True)
class Row:
    """One record of a table, its cells cleaned, numbered as a person sees it.

    ``number`` is the physical line where a CSV record starts (a quoted cell may
    span lines), or the sheet row number in a workbook. Cells are as many as the
    record has: a short row is not padded.
    """

    number: int
    cells: tuple[str, ...]

    def is_blank(self) -> bool:
        """True when every cell is empty (Excel leaves such rows below the data)."""
        return not any(self.cells)


@dataclass(slots=True)  # not frozen: one per line, and a frozen __init__ costs twice as much
class Line:
    """One physical line of a text file (its line ending removed), numbered from 1."""

    number: int
    text: str


def clean_cell(text: str) -> str:
    """A cell's value without the wrappers exporting tools put around it.

    Strips surrounding whitespace, then the Excel text formula ``="…"`` or a
    single leading ``'``, both of which merchant backends use to keep long
    numbers (order numbers, goods ids) from turning into ``1.23E+17``. A tab in
    front of a value, the same trick, goes with the whitespace.
    """
    if not text or (text[0] not in _NEEDS_CLEANING and text[-1] not in _BLANKS):
        return text  # the common case, without a copy
    value = text.strip(_BLANKS)
    if not value:
        return value
    first = value[0]
    if first == "=" and len(value) >= 3 and value[1] == '"' and value[-1] == '"':
        value = value[2:-1].replace('""', '"').strip(_BLANKS)
    elif first == "'":
        value = value[1:].strip(_BLANKS)
    return value


def cell_text(value: object) -> str:
    """A workbook cell's value as the text a person sees, cleaned.

    Times become ``YYYY-MM-DD HH:MM:SS`` (rounded to the second: Excel keeps
    them as fractions of a day), integral numbers lose the ``.0`` a spreadsheet
    adds, and other floats are written from their shortest repr in plain
    notation, so ``19.9`` stays ``19.9`` and never becomes ``19.899999…``.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return clean_cell(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number_text(value)
    if isinstance(value, datetime):
        moment = _to_second(value)
        return (
            f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} "
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
        )
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        moment = _to_second(datetime.combine(date(2000, 1, 1), value))
        return f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    if isinstance(value, timedelta):
        return str(value)
    return clean_cell(str(value))


def _to_second(moment: datetime) -> datetime:
    if moment.microsecond >= 500_000:
        moment += timedelta(seconds=1)
    return moment.replace(microsecond=0)


def _number_text(number: float) -> str:
    if number.is_integer() and abs(number) < 1e16:
        return str(int(number))
    # repr is the shortest text that reads back as the same float; Decimal writes
    # it without an exponent.
    return format(Decimal(repr(number)), "f")


def detect_encoding(head: bytes, *, at_eof: bool) -> str:
    """The codec of a text file from its first bytes.

    A BOM decides (UTF-8, or UTF-16 as Excel's "Unicode text" writes it);
    otherwise the sample must decode as strict UTF-8, or the file is taken as
    GB18030 (which covers GBK and GB2312, what Chinese Excel saves by default).
    ``at_eof`` says whether ``head`` is the whole file: if not, a multibyte
    character cut at its end is not held against UTF-8.
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(head, final=at_eof)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def sniff_delimiter(
    rows_of: Callable[[str], Iterable[Row]],
    looks_like_header: Callable[[Row], bool] | None = None,
) -> str:
    """Comma or tab: the one whose parse of the sample shows a header row.

    ``rows_of(delimiter)`` parses the sample. When ``looks_like_header``
    recognises a row under exactly one delimiter, that one wins; failing that,
    the delimiter that splits some sample row into the most non-empty cells (a
    tie goes to the comma). Empty cells are not counted because platforms put a
    tab in front of long numbers in comma-separated files, which a tab split
    turns into an extra empty cell per row.
    """
    if looks_like_header is not None:
        found = [d for d in DELIMITERS if any(looks_like_header(r) for r in rows_of(d))]
        if len(found) == 1:
            return found[0]
    widths = {
        d: max((sum(1 for cell in r.cells if cell) for r in rows_of(d)), default=0)
        for d in DELIMITERS
    }
    return max(DELIMITERS, key=lambda d: (widths[d], d == ","))


def _csv_rows(lines: Iterable[str], delimiter: str) -> Iterator[Row]:
    reader = csv.reader(lines, delimiter=delimiter)
    last_line = 0
    for cells in reader:
        # line_num is the last physical line of the record just read.
        number = last_line + 1
        last_line = reader.line_num
        yield Row(number, tuple([clean_cell(cell) for cell in cells]))


class TextSource:
    """A CSV, TSV or JSON-lines file, decoded as it is read.

    ``encoding`` and ``sample`` (the decoded leading text, whole lines only) are
    known from the start; :meth:`rows` and :meth:`lines` each stream the file
    from its beginning, one reader at a time.
    """

    kind: Final = "text"

    def __init__(self, binary: BinaryIO, *, owned: bool, size: int) -> None:
        self._binary = binary
        self._owned = owned
        self.size = size
        head = binary.read(SAMPLE_BYTES)
        at_eof = len(head) < SAMPLE_BYTES
        self.encoding = detect_encoding(head, at_eof=at_eof)
        self.sample = _whole_lines(head, self.encoding, at_eof=at_eof)
        self._text: io.TextIOWrapper | None = None
        self._closed = False

    def sample_rows(self, delimiter: str, limit: int) -> list[Row]:
        """The first ``limit`` records of the sample, parsed with ``delimiter``."""
        return list(islice(_csv_rows(io.StringIO(self.sample, newline=""), delimiter), limit))

    def first_text(self) -> str:
        """The first non-blank line of the sample, stripped ('' for an empty file)."""
        for line in io.StringIO(self.sample, newline=""):
            text = line.strip(_BLANKS)
            if text:
                return text
        return ""

    def rows(self, delimiter: str | None = None) -> Iterator[Row]:
        """Every record from the first line on; the delimiter is sniffed if not given."""
        if delimiter is None:
            delimiter = sniff_delimiter(lambda d: self.sample_rows(d, 15))
        text = self._reopen()
        rows = _csv_rows(text, delimiter)
        number = 0
        try:
            for row in rows:
                number = row.number
                yield row
        except UnicodeDecodeError:
            raise self._encoding_error(number + 1) from None
        except csv.Error as exc:
            raise ReadError(
                "bad_csv", f"line {number + 1} or after: the CSV cannot be parsed ({exc})"
            ) from None

    def lines(self) -> Iterator[Line]:
        """Every physical line from the first on, without its line ending."""
        text = self._reopen()
        number = 0
        try:
            for line in text:
                number += 1
                yield Line(number, line.rstrip("\r\n"))
        except UnicodeDecodeError:
            raise self._encoding_error(number + 1) from None

    def progress(self) -> Progress:
        """Bytes handed to the decoder so far, of the file size."""
        try:
            done = self._binary.tell()
        except ValueError:  # closed: the read is over
            done = self.size
        return Progress(done=min(done, self.size), total=self.size, unit="bytes")

    def close(self) -> None:
        """Release the file (a file object given by the caller is left open)."""
        if self._closed:
            return
        self._closed = True
        self._drop_text()
        if self._owned:
            self._binary.close()

    def _reopen(self) -> io.TextIOWrapper:
        if self._closed:
            raise ValueError("the source is closed")
        self._drop_text()
        self._binary.seek(0)
        # newline="" hands the csv module the line endings it needs to count lines.
        self._text = io.TextIOWrapper(
            self._binary, encoding=self.encoding, errors="strict", newline=""
        )
        return self._text

    def _drop_text(self) -> None:
        # Detach, not close: closing the wrapper would close a caller's file.
        if self._text is not None:
            self._text.detach()
            self._text = None

    def _encoding_error(self, line: int) -> ReadError:
        return ReadError(
            "encoding",
            f"line {line} or after: the file is not valid {self.encoding} there; "
            "save the whole file in one encoding (UTF-8 or GB18030)",
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _whole_lines(head: bytes, encoding: str, *, at_eof: bool) -> str:
    decoder = codecs.getincrementaldecoder(encoding)("replace")
    text: str = decoder.decode(head, final=at_eof)
    if not at_eof:
        # The last line may be cut; the sample is for sniffing, so drop it.
        cut = max(text.rfind("\n"), text.rfind("\r"))
        text = text[: cut + 1] if cut >= 0 else text
    return text


class XlsxSource:
    """The first worksheet of an XLSX workbook, read with openpyxl in read-only mode.

    Merchant backends write a wrong ``<dimension ref="A1">``; read-only openpyxl
    trusts it and would return one column, so the sheet's dimensions are reset
    and each row is as wide as its cells. Formulas give their cached values.
    """

    kind: Final = "xlsx"

    def __init__(self, binary: BinaryIO, *, owned: bool) -> None:
        from openpyxl import load_workbook

        self._binary = binary
        self._owned = owned
        try:
            # Exports often carry no styles part, which openpyxl warns about.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._workbook: Any = load_workbook(
                    binary, read_only=True, data_only=True, keep_links=False
                )
        except Exception as exc:  # openpyxl raises many kinds for a zip that is no workbook
            self._close_binary()
            raise ReadError(
                "not_xlsx", f"the file is a zip but not an XLSX workbook ({exc})"
            ) from None
        worksheets = self._workbook.worksheets
        if not worksheets:
            self._workbook.close()
            self._close_binary()
            raise ReadError("empty_workbook", "the workbook has no worksheet")
        self._sheet: Any = worksheets[0]
        self.sheet_title: str = self._sheet.title
        self._sheet.reset_dimensions()
        self._rows_done = 0
        self._rows_total: int | None = None
        self._counted = False
        self._iterator: Iterator[Any] | None = None
        self._closed = False

    def rows(self) -> Iterator[Row]:
        """Every sheet row from row 1 on, gaps included as empty rows."""
        if self._closed:
            raise ValueError("the source is closed")
        self._iterator = self._sheet.iter_rows(min_row=1, values_only=True)
        self._rows_done = 0
        for number, values in enumerate(self._iterator, start=1):
            self._rows_done = number
            yield Row(number, tuple([cell_text(value) for value in values]))

    def progress(self) -> Progress:
        """Rows read so far, of an estimate counted once from the sheet's XML."""
        if not self._counted:
            self._counted = True
            self._rows_total = self._count_rows()
        total = self._rows_total
        if total is not None:
            total = max(total, self._rows_done)
        return Progress(done=self._rows_done, total=total, unit="rows")

    def _count_rows(self) -> int | None:
        # A streaming count of row elements: one pass of decompression, no parsing.
        try:
            stream = self._workbook._archive.open(self._sheet._worksheet_path)
        except (AttributeError, KeyError, ValueError, OSError):
            return None
        count, tail = 0, b""
        with stream:
            while chunk := stream.read(1 << 20):
                data = tail + chunk
                count += data.count(b"<row ") + data.count(b"<row>")
                tail = data[-4:]  # shorter than a match, so none is counted twice
        return count or None

    def close(self) -> None:
        """Release the workbook (a file object given by the caller is left open)."""
        if self._closed:
            return
        self._closed = True
        if self._iterator is not None and hasattr(self._iterator, "close"):
            self._iterator.close()
        self._workbook.close()
        self._close_binary()

    def _close_binary(self) -> None:
        if self._owned:
            self._binary.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


Source = TextSource | XlsxSource


def open_source(file: FileInput) -> Source:
    """Open a file for streaming: a workbook if it starts like a zip, else text.

    Close the result (it is a context manager). Raises :class:`ReadError` for an
    old ``.xls`` file or a zip that is not a workbook.
    """
    owned = isinstance(file, (str, os.PathLike))
    binary: BinaryIO = open(file, "rb") if isinstance(file, (str, os.PathLike)) else file  # noqa: SIM115 (owned by the source)
    try:
        binary.seek(0, os.SEEK_END)
        size = binary.tell()
        binary.seek(0)
        magic = binary.read(8)
        binary.seek(0)
        if magic.startswith(_OLE_MAGIC):
            raise ReadError(
                "old_xls", "this is an old .xls workbook; save it as .xlsx or CSV and import that"
            )
        if magic.startswith(XLSX_MAGIC):
            return XlsxSource(binary, owned=owned)
        return TextSource(binary, owned=owned, size=size)
    except BaseException:
        if owned and not binary.closed:
            binary.close()
        raise


def first_rows(rows: Iterator[Row], limit: int) -> tuple[list[Row], Iterator[Row]]:
    """The first ``limit`` rows, and an iterator that still yields every row."""
    head = list(islice(rows, limit))
    return head, _chain(head, rows)


def _chain(head: Sequence[Row], rest: Iterator[Row]) -> Iterator[Row]:
    yield from head
    yield from rest
