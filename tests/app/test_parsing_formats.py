"""Each format parses to the right title, text, heading paths and section bodies.

Fixtures are built here: docx with python-docx, pdf with fpdf2, html and markdown as strings.
"""

from __future__ import annotations

import io

import pytest
from docx import Document
from fpdf import FPDF

from app.parsing import (
    ParsedDocument,
    ParseError,
    UnsupportedFormatError,
    parse_document,
    parse_text,
)


def bodies(doc: ParsedDocument) -> list[tuple[tuple[str, ...], str]]:
    return [(s.heading_path, doc.text[s.start : s.end]) for s in doc.sections]


def assert_well_formed(doc: ParsedDocument) -> None:
    """Sections are in order, disjoint, inside the text and trimmed to non-blank bodies."""
    previous_end = 0
    for section in doc.sections:
        body = doc.text[section.start : section.end]
        assert previous_end <= section.start < section.end <= len(doc.text)
        assert body == body.strip() and body
        previous_end = section.end


def make_pdf(pages: list[str], title: str | None = None) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    if title:
        pdf.set_title(title)
    for page in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, page)
    return bytes(pdf.output())


def make_docx() -> bytes:
    document = Document()
    document.add_paragraph("Annual Report", style="Title")
    document.add_heading("Overview", level=1)
    document.add_paragraph("Sales grew. Costs fell.")
    document.add_paragraph("first point", style="List Bullet")
    document.add_heading("Numbers", level=2)
    table = document.add_table(rows=2, cols=2)
    cells = {(0, 0): "Year", (0, 1): "Sales", (1, 0): "2024", (1, 1): "12"}
    for (row, col), value in cells.items():
        table.cell(row, col).text = value
    document.add_paragraph("After the table.")
    document.add_heading("Outlook", level=1)
    document.add_paragraph("More growth.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_txt_keeps_text_and_takes_first_line_as_title() -> None:
    doc = parse_document(b"\xef\xbb\xbfMeeting notes\r\n\r\nWe met. We agreed.\r\n", "n.txt")
    assert doc.format == "txt"
    assert doc.text == "Meeting notes\n\nWe met. We agreed.\n"
    assert doc.title == "Meeting notes"
    assert bodies(doc) == [((), "Meeting notes\n\nWe met. We agreed.")]
    assert doc.metadata["filename"] == "n.txt"


def test_txt_long_first_line_falls_back_to_the_file_stem() -> None:
    doc = parse_document(("word " * 40).encode(), "dir/My Notes.TXT")
    assert doc.title == "My Notes"


MARKDOWN = """Preamble text.

# User Guide

Intro sentence.

```bash
# not a heading
echo hi
```

## Install ##

Run the installer.

Configure
---------
Edit the file.

### Details
Fine print.

# Appendix
Extra.
"""


def test_markdown_headings_define_sections_and_fences_are_not_headings() -> None:
    doc = parse_document(MARKDOWN.replace("\n", "\r\n").encode(), "guide.md")
    assert doc.text == MARKDOWN
    assert doc.title == "User Guide"
    assert bodies(doc) == [
        ((), "Preamble text."),
        (("User Guide",), "Intro sentence.\n\n```bash\n# not a heading\necho hi\n```"),
        (("User Guide", "Install"), "Run the installer."),
        (("User Guide", "Configure"), "Edit the file."),
        (("User Guide", "Configure", "Details"), "Fine print."),
        (("Appendix",), "Extra."),
    ]
    assert_well_formed(doc)


def test_markdown_without_h1_is_titled_by_stem_and_front_matter_is_not_indexed() -> None:
    text = "---\ntitle: x\n---\n## Part\nBody *here*.\n"
    doc = parse_document(text.encode(), "notes.markdown")
    assert doc.title == "notes"
    assert bodies(doc) == [(("Part",), "Body *here*.")]


HTML = """<!DOCTYPE html><html><head><title> The  Page </title>
<style>p {color: red}</style><script>var headline = "# fake";</script></head>
<body><nav><a href="/">Home</a> <a href="/about">About</a></nav>
<header><p>Site banner</p></header>
<div role="navigation">Breadcrumbs</div>
<main><h1>Main <em>Heading</em></h1>
<p>First paragraph. It has
   two sentences.</p>
<h2>Data</h2>
<table><tr><th>Name</th><th>Score</th></tr><tr><td>Ada</td><td>10</td></tr></table>
<h3>Deeper</h3><ul><li>one</li><li>two</li></ul>
<h2>Next</h2><p>Closing words.<br>New line.</p>
<!-- a comment --><noscript>Enable JS</noscript></main>
<aside>Related links</aside><footer>Copyright</footer></body></html>"""


def test_html_drops_boilerplate_and_nests_headings() -> None:
    doc = parse_document(HTML.encode(), "page.htm")
    assert doc.title == "The Page"
    for junk in (
        "Home",
        "banner",
        "Breadcrumbs",
        "color",
        "fake",
        "comment",
        "Enable JS",
        "Related",
        "Copyright",
    ):
        assert junk not in doc.text
    assert bodies(doc) == [
        (("Main Heading",), "First paragraph. It has two sentences."),
        (("Main Heading", "Data"), "Name | Score\nAda | 10"),
        (("Main Heading", "Data", "Deeper"), "- one\n- two"),
        (("Main Heading", "Next"), "Closing words.\nNew line."),
    ]
    assert doc.text.startswith("Main Heading\n\nFirst paragraph.")
    assert "\n\nData\n\n" in doc.text  # heading lines are in the text, outside every body
    assert_well_formed(doc)


def test_html_title_falls_back_to_h1_and_meta_charset_is_honoured() -> None:
    data = '<html><head><meta charset="windows-1252"></head><body><h1>Café</h1><p>Crème.</p>'
    doc = parse_document(data.encode("cp1252"), "menu.html")
    assert doc.title == "Café"
    assert bodies(doc) == [(("Café",), "Crème.")]


def test_deeply_nested_html_does_not_blow_the_stack() -> None:
    depth = 5000
    data = ("<html><body>" + "<div>" * depth + "<p>Deep text.</p>" + "</div>" * depth).encode()
    doc = parse_document(data, "deep.html")
    assert bodies(doc) == [((), "Deep text.")]


def test_pdf_has_one_section_per_page() -> None:
    data = make_pdf(["First page. It has text.", "Second page here."], title="Quarterly")
    doc = parse_document(data, "q.pdf")
    assert doc.format == "pdf"
    assert doc.title == "Quarterly"
    assert doc.metadata["pages"] == "2"
    assert [(s.heading_path, s.page) for s in doc.sections] == [(("Page 1",), 1), (("Page 2",), 2)]
    assert [body for _, body in bodies(doc)] == ["First page. It has text.", "Second page here."]
    assert doc.text == "First page. It has text.\n\nSecond page here."


def test_pdf_without_metadata_title_uses_first_line() -> None:
    doc = parse_document(make_pdf(["Short Title\nBody text follows."]), "x.pdf")
    assert doc.title == "Short Title"


def test_docx_headings_tables_and_order() -> None:
    doc = parse_document(make_docx(), "report.docx")
    assert doc.format == "docx"
    assert doc.title == "Annual Report"
    assert bodies(doc) == [
        (("Annual Report", "Overview"), "Sales grew. Costs fell.\n\n- first point"),
        (("Annual Report", "Overview", "Numbers"), "Year | Sales\n2024 | 12\n\nAfter the table."),
        (("Annual Report", "Outlook"), "More growth."),
    ]
    assert_well_formed(doc)


def test_format_falls_back_to_content_type_then_to_magic_bytes() -> None:
    assert parse_document(b"# Hi\nthere", "upload", "text/markdown; charset=utf-8").format == "md"
    assert parse_document(make_pdf(["Sniffed."]), "blob").format == "pdf"
    assert parse_document(make_docx(), "blob").format == "docx"
    with pytest.raises(UnsupportedFormatError, match="'application/octet-stream'"):
        parse_document(b"\x00\x01binary", "blob", "application/octet-stream")
    with pytest.raises(UnsupportedFormatError, match=r"\(it is a PNG image\)"):
        parse_document(b"\x89PNG\r\n\x1a\n....", "picture")


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("LICENSE", None),
        ("Apache-2.0", "application/octet-stream"),
        ("ls.1", ""),
        ("notes.rst", "text/x-rst"),
        ("data.csv", "text/csv"),
        ("facts.json", "application/json"),  # what browsers and httpx send for .json
        ("ls.1", "application/x-troff-man"),
    ],
)
def test_plain_text_that_nothing_names_is_read_as_text(name: str, content_type: str | None) -> None:
    """LICENSE, README, man pages and licence files named by version are documents too."""
    doc = parse_document(b"Apache License\n\nVersion 2.0, January 2004.", name, content_type)
    assert doc.format == "txt" and doc.title == "Apache License"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("old.doc", b"data"),  # a rich format we do not read, whatever its bytes
        ("blob", b"text\x00with a NUL"),
        ("archive.1", b"\x1f\x8b\x08compressed"),  # a gzipped man page
    ],
)
def test_files_that_are_not_plain_text_stay_unsupported(name: str, data: bytes) -> None:
    with pytest.raises(UnsupportedFormatError):
        parse_document(data, name)


def test_plain_text_not_in_utf8_says_so() -> None:
    with pytest.raises(ParseError, match="not valid UTF-8"):
        parse_document(b"caf\xe9 au lait", "LICENSE")


def test_parse_text_for_json_uploads() -> None:
    doc = parse_text("Given title", "# Heading\r\nBody.", "md")
    assert doc.title == "Given title"
    assert doc.text == "# Heading\nBody."
    assert bodies(doc) == [(("Heading",), "Body.")]
    assert parse_text(" ", "Just text.").title == "Just text."
    with pytest.raises(UnsupportedFormatError, match="'pdf'"):
        parse_text("t", "x", "pdf")


def test_prose_first_line_is_not_a_title() -> None:
    from app.parsing import parse_document

    prose = parse_document(b"Expense policy. Employees may claim 40 euros.\nMore.", "policy.txt")
    assert prose.title == "policy"
    heading = parse_document(b"Expense policy\n\nEmployees may claim 40 euros.", "policy.txt")
    assert heading.title == "Expense policy"
