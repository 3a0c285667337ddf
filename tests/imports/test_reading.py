"""Reading seller files: encodings, cell wrappers, row numbers, workbooks, streaming."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime, time
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from app.imports.reading import (
    SAMPLE_BYTES,
    Progress,
    ReadError,
    Row,
    TextSource,
    XlsxSource,
    cell_text,
    clean_cell,
    detect_encoding,
    open_source,
    sniff_delimiter,
)
from tests.imports import exports


def _text_file(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _rows(path: Path | io.BytesIO, delimiter: str | None = None) -> list[Row]:
    with open_source(path) as source:
        if isinstance(source, TextSource):
            return list(source.rows(delimiter))
        return list(source.rows())


# --- cells -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  19.90 ", "19.90"),
        ("\t231126-012345678901234", "231126-012345678901234"),
        ("'0123456789", "0123456789"),
        ('="231126-0123456789"', "231126-0123456789"),
        (' ="0012" ', "0012"),
        ('="say ""hi"""', 'say "hi"'),
        ("\u3000已签收\u3000", "已签收"),
        ("\ufeff订单号", "订单号"),
        ("\t'0123", "0123"),
        ("'", ""),
        ("", ""),
        ("=SUM(A1:A3)", "=SUM(A1:A3)"),
        ("don't", "don't"),
        ('="', '="'),
    ],
)
def test_clean_cell_removes_export_wrappers(raw: str, clean: str) -> None:
    assert clean_cell(raw) == clean


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (853256536527, "853256536527"),
        (3.0, "3"),
        (19.9, "19.9"),
        (104.29, "104.29"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e-05, "0.00001"),
        (2.5e16, "25000000000000000"),
        (True, "TRUE"),
        (datetime(2026, 11, 26, 10, 0, 0), "2026-11-26 10:00:00"),
        (datetime(2026, 11, 26, 9, 59, 59, 999_000), "2026-11-26 10:00:00"),
        (datetime(2026, 11, 26, 10, 0, 0, 400_000), "2026-11-26 10:00:00"),
        (date(2026, 11, 26), "2026-11-26"),
        (time(8, 30, 15), "08:30:15"),
        ("\t 231126-1 ", "231126-1"),
    ],
)
def test_workbook_values_read_as_a_person_sees_them(value: object, text: str) -> None:
    assert cell_text(value) == text


# --- encodings ---------------------------------------------------------------


def test_bom_decides_the_encoding() -> None:
    assert detect_encoding("\ufeff订单号".encode("utf-8"), at_eof=True) == "utf-8-sig"
    assert detect_encoding("订单号".encode("utf-16"), at_eof=True) == "utf-16"


def test_strict_utf8_else_gb18030() -> None:
    assert detect_encoding(b"event_id,type\n", at_eof=True) == "utf-8"
    assert detect_encoding("订单号,商品id".encode(), at_eof=True) == "utf-8"
    assert detect_encoding("订单号,商品id".encode("gb18030"), at_eof=True) == "gb18030"


def test_a_multibyte_character_cut_by_the_sample_is_not_held_against_utf8() -> None:
    cut = "订单号".encode()[:-1]  # the last character lacks its final byte
    assert detect_encoding(cut, at_eof=False) == "utf-8"
    assert detect_encoding(cut, at_eof=True) == "gb18030"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "utf-16"])
def test_every_encoding_reads_the_same_rows(tmp_path: Path, encoding: str) -> None:
    text = "订单查询导出 2026-11-26\r\n订单号,快递公司\r\n\t231126-1,极兔速递\r\n"
    path = _text_file(tmp_path, text, encoding)
    with open_source(path) as source:
        assert isinstance(source, TextSource)
        assert source.encoding == encoding
        rows = list(source.rows())
    assert rows == [
        Row(1, ("订单查询导出 2026-11-26",)),
        Row(2, ("订单号", "快递公司")),
        Row(3, ("231126-1", "极兔速递")),
    ]


def test_encoding_is_found_when_the_sample_boundary_cuts_a_character(tmp_path: Path) -> None:
    header = "订单号,退款原因\n"
    line = "231126-1,质量问题\n"
    text = header + line * (SAMPLE_BYTES // len(line.encode()) + 5)
    data = text.encode()
    for shift in range(3):
        # Shift the text until the sample's end falls inside a three-byte character.
        shifted = "x" * shift + "\n" + text
        data = shifted.encode()
        try:
            data[:SAMPLE_BYTES].decode("utf-8")
        except UnicodeDecodeError:
            break
    else:
        pytest.fail("no shift cuts a character at the sample boundary")
    path = tmp_path / "cut.csv"
    path.write_bytes(data)
    with open_source(path) as source:
        assert isinstance(source, TextSource)
        assert source.encoding == "utf-8"
        rows = list(source.rows(","))
    assert rows[-1].cells == ("231126-1", "质量问题")


def test_a_file_that_changes_encoding_midway_is_refused_naming_the_line(tmp_path: Path) -> None:
    head = "订单号,商品id\n" + "231126-1,1\n" * (SAMPLE_BYTES // 11 + 10)
    tail = "231126-2,退款\n".encode("gb18030")
    path = tmp_path / "mixed.csv"
    path.write_bytes(head.encode() + tail)
    with open_source(path) as source, pytest.raises(ReadError) as caught:
        assert isinstance(source, TextSource)
        for _ in source.rows(","):
            pass
    assert caught.value.code == "encoding"
    assert "not valid utf-8" in caught.value.message
    assert "line " in caught.value.message


# --- rows and lines ----------------------------------------------------------


def test_row_numbers_are_physical_lines_where_records_start(tmp_path: Path) -> None:
    text = 'title\n\na,b\n"two\nlines",x\n\n3,y\n'
    rows = _rows(_text_file(tmp_path, text), ",")
    assert [(r.number, r.cells) for r in rows] == [
        (1, ("title",)),
        (2, ()),
        (3, ("a", "b")),
        (4, ("two\nlines", "x")),
        (6, ()),
        (7, ("3", "y")),
    ]
    assert rows[1].is_blank() and not rows[2].is_blank()


def test_crlf_and_lone_cr_line_endings_count_as_lines(tmp_path: Path) -> None:
    rows = _rows(_text_file(tmp_path, "a,b\r\nc,d\re,f\r\n"), ",")
    assert [r.number for r in rows] == [1, 2, 3]


def test_tab_separated_files_are_sniffed(tmp_path: Path) -> None:
    path = _text_file(tmp_path, "订单号\t商品id\n231126-1\t88\n")
    assert _rows(path)[1].cells == ("231126-1", "88")


def test_tab_prefixed_numbers_do_not_make_a_comma_file_look_tab_separated(tmp_path: Path) -> None:
    text = "订单号,商品id,样式ID\n\t231126-1,\t88,\t99\n\t231126-2,\t88,\t99\n"
    path = _text_file(tmp_path, text)
    assert _rows(path)[1].cells == ("231126-1", "88", "99")


def test_sniffing_prefers_the_delimiter_that_shows_a_header() -> None:
    sample = {",": [Row(1, ("a\tb",)), Row(2, ("x", "y"))], "\t": [Row(1, ("a", "b"))]}
    assert sniff_delimiter(lambda d: sample[d], lambda row: row.cells == ("a", "b")) == "\t"
    assert sniff_delimiter(lambda d: sample[d]) == ","  # a tie goes to the comma


def test_json_lines_keep_their_numbers_without_line_endings(tmp_path: Path) -> None:
    path = _text_file(tmp_path, '{"a": 1}\r\n\n{"b": 2}\n')
    with open_source(path) as source:
        assert isinstance(source, TextSource)
        assert source.first_text() == '{"a": 1}'
        lines = list(source.lines())
    assert [(line.number, line.text) for line in lines] == [
        (1, '{"a": 1}'),
        (2, ""),
        (3, '{"b": 2}'),
    ]


def test_a_file_object_is_read_and_left_open() -> None:
    binary = io.BytesIO("订单号,商品id\n231126-1,88\n".encode("gb18030"))
    assert _rows(binary)[1].cells == ("231126-1", "88")
    assert not binary.closed


def test_text_progress_counts_bytes_of_the_file(tmp_path: Path) -> None:
    path = exports.write_many_orders_csv(tmp_path / "big.csv", 1500, remark_chars=1000)
    size = path.stat().st_size
    with open_source(path) as source:
        assert isinstance(source, TextSource)
        rows = source.rows()
        next(rows)
        early = source.progress()
        assert early.unit == "bytes" and early.total == size
        assert 0 < early.done < size / 4  # streaming: far from the end after one row
        for _ in rows:
            pass
        assert source.progress() == Progress(done=size, total=size, unit="bytes")
    assert Progress(5, 10, "bytes").fraction == 0.5
    assert Progress(5, None, "rows").fraction is None


# --- workbooks ---------------------------------------------------------------


def test_a_wrong_dimension_still_reads_every_column(tmp_path: Path) -> None:
    records = exports.aftersales(3, 12)
    path = exports.write_aftersales_xlsx(tmp_path / "a.xlsx", records)
    # The quirk is there: openpyxl alone would see the single cell A1.
    workbook = load_workbook(path, read_only=True)
    assert workbook.worksheets[0].calculate_dimension() == "A1:A1"
    workbook.close()

    rows = _rows(path)
    assert rows[0] == Row(1, ("售后列表导出",))
    assert rows[1].cells == exports.AFTERSALE_COLUMNS
    assert rows[2].cells[0] == records[0].after_sale_id
    assert rows[2].cells[exports.AFTERSALE_COLUMNS.index("申请时间")] == (
        f"{records[0].applied_at:%Y-%m-%d %H:%M:%S}"
    )
    assert len(rows) == 2 + len(records)


def test_workbook_rows_carry_sheet_row_numbers_and_typed_values(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet["A1"] = "售后列表导出"
    sheet.append(["售后编号", "申请时间", "退款金额(元)", "数量"])
    sheet["A5"] = 13579246801
    sheet["B5"] = datetime(2026, 11, 20, 10, 0, 0)
    sheet["C5"] = 19.9
    sheet["D5"] = 2.0
    path = tmp_path / "typed.xlsx"
    workbook.save(path)
    exports.set_dimension(path, "A1")

    rows = _rows(path)
    assert [r.number for r in rows] == [1, 2, 3, 4, 5]
    assert rows[2].is_blank() and rows[3].is_blank()
    assert rows[4].cells == ("13579246801", "2026-11-20 10:00:00", "19.9", "2")


def test_workbook_progress_counts_rows_of_an_estimated_total(tmp_path: Path) -> None:
    path = exports.write_aftersales_xlsx(tmp_path / "a.xlsx", exports.aftersales(4, 30))
    with open_source(path) as source:
        assert isinstance(source, XlsxSource)
        rows = source.rows()
        next(rows)
        assert source.progress() == Progress(done=1, total=32, unit="rows")
        for _ in rows:
            pass
        assert source.progress() == Progress(done=32, total=32, unit="rows")


def test_an_old_xls_workbook_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "old.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512)
    with pytest.raises(ReadError) as caught:
        open_source(path)
    assert caught.value.code == "old_xls"
    assert ".xlsx or CSV" in caught.value.message


def test_a_zip_that_is_no_workbook_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "orders.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("orders.csv", "订单号\n")
    with pytest.raises(ReadError) as caught:
        open_source(path)
    assert caught.value.code == "not_xlsx"
