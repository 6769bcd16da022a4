"""A corpus of malformed and hostile uploads, generated in code (no binary fixtures committed).

Each builder returns the bytes of one file; sizes are parameters so tests stay fast while a
one-off measurement can scale them up (see ``python -m tests.app.malformed``).
"""

from __future__ import annotations

import gzip
import io
import random
import zipfile
import zlib

from docx import Document
from fpdf import FPDF

_W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def pdf(text: str = "Some text on a page.", pages: int = 3, password: str | None = None) -> bytes:
    doc = FPDF()
    doc.set_font("Helvetica", size=12)
    for _ in range(pages):
        doc.add_page()
        doc.multi_cell(0, 8, text)
    if password:
        doc.set_encryption(owner_password="owner-secret", user_password=password)
    return bytes(doc.output())


def truncated_pdf() -> bytes:
    data = pdf()
    return data[: len(data) // 2]


def encrypted_pdf() -> bytes:
    return pdf(password="user-secret")


def ascii_pdf() -> bytes:
    """A tiny hand-written PDF that is pure ASCII: valid UTF-8, so only its magic betrays it."""
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def zip_archive(members: dict[str, bytes], level: int = 9) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def plain_zip() -> bytes:
    return zip_archive({"readme.txt": b"Not a Word document."})


def docx_with_body(body_xml: bytes) -> bytes:
    """A real python-docx document whose ``word/document.xml`` is replaced by ``body_xml``."""
    buffer = io.BytesIO()
    Document().save(buffer)
    members = {}
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        for info in archive.infolist():
            members[info.filename] = archive.read(info)
    members["word/document.xml"] = body_xml
    return zip_archive(members)


def _document_xml(paragraphs: bytes) -> bytes:
    return b"<w:document %s><w:body>%s</w:body></w:document>" % (_W.encode(), paragraphs)


def docx_many_paragraphs(count: int) -> bytes:
    """``count`` short paragraphs: a big but honest document."""
    para = b"<w:p><w:r><w:t>Paragraph %d says something.</w:t></w:r></w:p>"
    return docx_with_body(_document_xml(b"".join(para % i for i in range(count))))


def docx_bomb(unzipped_mb: int) -> bytes:
    """A docx whose document.xml inflates to ``unzipped_mb`` MB of blank space (ratio ~1000:1)."""
    filler = b" " * (unzipped_mb * 1024 * 1024)
    return docx_with_body(_document_xml(b"<w:p><w:r><w:t>x</w:t></w:r></w:p>" + filler))


def docx_entity_expansion(levels: int = 9) -> bytes:
    """ "Billion laughs": nested XML entities that would expand to 10**levels copies."""
    entities = ['<!ENTITY e0 "lol">'] + [
        f'<!ENTITY e{i} "{f"&e{i - 1};" * 10}">' for i in range(1, levels + 1)
    ]
    head = f"<!DOCTYPE w:document [{''.join(entities)}]>".encode()
    body = b"<w:p><w:r><w:t>&e%d;</w:t></w:r></w:p>" % levels
    return docx_with_body(head + _document_xml(body))


def random_bytes(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def png_header() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"IHDR" + random_bytes(200)


def elf_header() -> bytes:
    return b"\x7fELF\x02\x01\x01" + bytes(9) + random_bytes(200)


def gzipped_text() -> bytes:
    return gzip.compress(b"Plain text, but compressed. " * 50)


def invalid_utf8() -> bytes:
    return "Le café est prêt. ".encode() * 20 + b"\xc3\x28 broken \xff\xfe"


def long_line(size: int) -> bytes:
    """One line of ``size`` bytes: words without any sentence break or newline."""
    word = b"lorem ipsum dolor sit amet consectetur "
    return (word * (size // len(word) + 1))[:size]


def nested_html(depth: int) -> bytes:
    return b"<html><body>" + b"<div>" * depth + b"deep text" + b"</div>" * depth + b"</body></html>"


def huge_attribute_html(size: int) -> bytes:
    value = b"a" * size
    return b'<html><body><p title="%s" data-x="%s">Visible text.</p></body></html>' % (
        value,
        value,
    )


_MEASURE = """
import re, sys, time
from app.parsing import ParseError, chunk_document, parse_document
def hwm():  # VmHWM is per process image (ru_maxrss is inherited from the parent on fork)
    status = open("/proc/self/status").read()
    return int(re.search(r"VmHWM:\\s+(\\d+)", status).group(1)) / 1024
data = open(sys.argv[1], "rb").read()
base = hwm()
start = time.perf_counter()
try:
    doc = parse_document(data, sys.argv[2])
    outcome = f"parsed: {len(doc.text)} chars, {len(chunk_document(doc))} chunks"
except ParseError as exc:
    outcome = f"ParseError: {str(exc)[:90]}"
peak = hwm()
seconds = time.perf_counter() - start
print(f"{seconds:.2f} s, peak RSS {peak:.0f} MB (+{peak - base:.0f}): {outcome}")
"""

if __name__ == "__main__":  # one-off measurements at full scale: python -m tests.app.malformed
    import subprocess
    import sys
    import tempfile

    cases = {
        "half.pdf": truncated_pdf,
        "locked.pdf": encrypted_pdf,
        "archive.pdf": plain_zip,
        "archive.docx": plain_zip,
        "junk.txt": lambda: random_bytes(1024 * 1024),
        "image.txt": png_header,
        "report.txt": ascii_pdf,
        "latin.txt": invalid_utf8,
        "long_line_50mb.txt": lambda: long_line(50 * 1024 * 1024),
        "nested_100k.html": lambda: nested_html(100_000),
        "attribute_20mb.html": lambda: huge_attribute_html(10 * 1024 * 1024),
        "paragraphs_200k.docx": lambda: docx_many_paragraphs(200_000),
        "bomb_500mb.docx": lambda: docx_bomb(500),
        "bomb_30mb.docx": lambda: docx_bomb(30),
        "laughs.docx": lambda: docx_entity_expansion(),
        "paragraphs_500k.docx": lambda: docx_many_paragraphs(500_000),
    }
    for name, build in cases.items():
        if len(sys.argv) > 1 and name not in sys.argv[1:]:
            continue
        with tempfile.NamedTemporaryFile(suffix=name) as tmp:
            tmp.write(build())
            tmp.flush()
            size = tmp.tell()
            run = subprocess.run(
                [sys.executable, "-c", _MEASURE, tmp.name, name], capture_output=True, text=True
            )
        print(f"{name}: {size} bytes, {(run.stdout or run.stderr).strip()[-300:]}")


def shared_stream_pdf(pages: int, lines: int, line: bytes = b"a" * 60) -> bytes:
    """A small PDF whose ``pages`` pages all draw ONE compressed content stream of ``lines``
    text lines: the file stays kilobytes while extraction does ``pages`` x ``lines`` work."""
    ops = b"BT /F1 12 Tf 72 720 Td 14 TL " + b"".join(b"(%s) Tj T* " % line for _ in range(lines))
    stream = zlib.compress(ops + b"ET", 9)
    kids = b" ".join(b"%d 0 R" % (5 + i) for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [ %s ] /Count %d >>" % (kids, pages),
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R"
        b" /Resources << /Font << /F1 4 0 R >> >> >>"
    )
    objects += [page] * pages
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
