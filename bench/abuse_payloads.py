"""Attack payloads for bench.abuse, built in memory: a PDF whose pages share one deflated
content stream, a docx of many tiny paragraphs, deeply nested markdown, generated prose and the
multipart bodies and upload forms that carry them. Only builds bytes; sends nothing."""

from __future__ import annotations

import io
import random
import secrets
import zipfile
import zlib
from typing import Any

from bench.crash import document


def pdf_bomb(pages: int, text_kb: int) -> bytes:
    """A small PDF whose pages all draw one FlateDecode stream of ``text_kb`` KB of text
    operators: the text to extract is pages x text_kb, from a file of a few KB."""
    line = b"(" + b"a" * 70 + b") Tj T*\n"
    content = b"BT /F1 6 Tf 7 TL 20 820 Td\n" + line * (text_kb * 1024 // len(line)) + b"ET\n"
    stream = zlib.compress(content, 9)
    kids = " ".join(f"{5 + i} 0 R" for i in range(pages))
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
    page += b"/Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(stream), stream),
        *[page] * pages,
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
DOCX_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships'
    '+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.wordprocessingml.document.main+xml"/></Types>'
)
DOCX_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)


def docx_bomb(paragraphs: int) -> bytes:
    """A minimal docx (three parts) of ``paragraphs`` one-letter paragraphs."""
    body = "<w:p><w:r><w:t>a</w:t></w:r></w:p>" * paragraphs
    xml = f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{W_NS}"><w:body>{body}'
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", DOCX_TYPES)
        z.writestr("_rels/.rels", DOCX_RELS)
        z.writestr("word/document.xml", xml + "</w:body></w:document>")
    return buf.getvalue()


def nested_md(lines: int, depth: int) -> bytes:
    return "".join("  " * (i % depth) + "- x\n" for i in range(lines)).encode()


def prose(mb: float, seed: int) -> str:
    """Generated paragraphs (bench.crash's documents) of about ``mb`` MB."""
    rng, parts, size = random.Random(seed), [], 0
    for i in range(1_000_000):  # bounded; ends at the size
        if size >= mb * 1_000_000:
            break
        parts.append(document(f"P{seed}X{i}", rng)["text"])
        size += len(parts[-1]) + 2
    return "\n\n".join(parts)


def files(name: str, data: bytes, content_type: str) -> dict[str, Any]:
    return {"files": [("files", (name, data, content_type))]}


def multipart_body(data: bytes) -> tuple[str, bytes]:
    boundary = secrets.token_hex(16)
    part = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="cut.md"\r\n'
        "Content-Type: text/markdown\r\n\r\n"
    ).encode()
    end = f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", part + data + end
