"""Every way an upload can be unusable ends in a ParseError that names the file and the reason."""

from __future__ import annotations

import io
import os
import zipfile

import pytest
from fpdf import FPDF

from app.parsing import ParseError, UnsupportedFormatError, parse_document, parse_text


def make_pdf(text: str = "Some text on a page.", password: str | None = None) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for _ in range(3):
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    if password:
        pdf.set_encryption(owner_password="owner-secret", user_password=password)
    return bytes(pdf.output())


def make_zip(names: list[str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<xml/>")
    return buffer.getvalue()


def test_unknown_extension_is_unsupported() -> None:
    with pytest.raises(UnsupportedFormatError) as caught:
        parse_document(b"MZ\x90\x00", "x.exe")
    assert str(caught.value) == (
        "unsupported file type '.exe' for 'x.exe'; supported: txt, md, html, pdf, docx"
    )


def test_unsupported_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        parse_document(b"data", "old.doc")


@pytest.mark.parametrize(
    ("data", "filename", "reason"),
    [
        (b"", "empty.txt", "is empty"),
        (b"", "empty.pdf", "is empty"),
        (b" \n\t\r\n ", "blank.md", "only whitespace"),
        (b"\xef\xbb\xbf   ", "bom.txt", "only whitespace"),
        (b"\xff\xfe\xfa", "latin.txt", "not valid UTF-8"),
        (b"caf\xe9 au lait", "cafe.md", "byte 0xe9 at offset 3"),
        (b"<p>caf\xe9</p>", "page.html", "not valid UTF-8"),
        (b"text\x00with\x00nul", "junk.txt", "looks binary"),
        (b"\x01\x02\x03\x04\x05abc" * 10, "ctrl.txt", "looks binary"),
        (b"hello, plain text", "fake.pdf", "not a PDF"),
        (b"%PDF-1.4 garbage", "garbage.pdf", "not a readable PDF"),
        (b"just text", "fake.docx", "not a zip"),
        (b"PK\x03\x04 truncated zip", "broken.docx", "corrupt"),
        (make_zip(["hello.txt"]), "archive.docx", "not a Word .docx"),
        (make_zip(["word/document.xml"]), "hollow.docx", "not a readable .docx"),
        (b"<html><body><script>x()</script></body></html>", "empty.html", "contains no text"),
        (b"# Only\n## Headings\n", "bare.md", "contains no text"),
    ],
)
def test_unusable_uploads_raise_parse_error(data: bytes, filename: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason) as caught:
        parse_document(data, filename)
    assert filename in str(caught.value)


def test_random_junk_named_txt() -> None:
    junk = os.urandom(4096) + b"\x00"
    with pytest.raises(ParseError, match=r"junk\.txt"):
        parse_document(junk, "junk.txt")


def test_truncated_pdf() -> None:
    data = make_pdf()
    with pytest.raises(ParseError, match=r"half\.pdf"):
        parse_document(data[: len(data) // 2], "half.pdf")


def test_encrypted_pdf() -> None:
    with pytest.raises(ParseError, match="is encrypted"):
        parse_document(make_pdf(password="user-secret"), "locked.pdf")


def test_pdf_with_owner_password_only_is_readable() -> None:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(0, 8, "Readable without a password.")
    pdf.set_encryption(owner_password="owner-secret")
    doc = parse_document(bytes(pdf.output()), "restricted.pdf")
    assert doc.text == "Readable without a password."


def test_pdf_without_text_layer() -> None:
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(10, 10, 50, 50)  # a drawing, no text
    with pytest.raises(ParseError, match="no extractable text"):
        parse_document(bytes(pdf.output()), "scan.pdf")


def test_parse_text_rejects_blank_and_binary() -> None:
    with pytest.raises(ParseError, match="only whitespace"):
        parse_text("Title", "  \n ")
    with pytest.raises(ParseError, match="looks binary"):
        parse_text("Title", "a\x00b")
