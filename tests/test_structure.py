"""Documents as their authors structured them: main content, headings, sections, pages."""

from __future__ import annotations

import io
import sqlite3

import pytest
from conftest import paged_pdf

from qa.chunking import ChunkSettings, chunk_document
from qa.documents import Document
from qa.embedded import EmbeddedEngine
from qa.engines import EngineChoice
from qa.ingest import ingest
from qa.readers import parse_document
from qa.search import Searcher, SearchRequest
from qa.web import create_app

FILLER = ("Bees gather nectar from many flowers in the warm months and carry it home to the hive, where "
          "other workers turn it into honey and store it in wax cells for the winter ahead. ")

SPHINX_LIKE = """<!DOCTYPE html><html><head><title>csv — CSV File Reading and Writing — Python docs</title>
<script>var tracking = 1;</script></head><body>
<div class="mobile-nav"><nav role="navigation"><a href="/">Logo</a> Quick search</nav></div>
<div class="sphinxsidebar" role="navigation"><h3>Table of Contents</h3><ul><li>reader()</li></ul>
<h4>Previous topic</h4></div>
<header>Site banner</header>
<div class="body" role="main">
<section><h1>csv — CSV File Reading and Writing<a class="headerlink" href="#csv" title="Permalink">¶</a></h1>
<p>The csv module implements classes to read and write tabular data.</p>
<section><h2>Module Contents<a class="headerlink" href="#mc">¶</a></h2>
<dl class="py class"><dt class="sig sig-object py" id="csv.DictReader">class csv.DictReader(f, fieldnames=None)<a class="headerlink" href="#csv.DictReader">¶</a></dt>
<dd><p>Create an object that operates like a regular reader but maps the information in each row to a dict.</p></dd></dl>
<div class="highlight"><pre>import csv
with open('eggs.csv', newline='') as f:
    print(f.read())</pre></div>
<table><tr><th>Name</th><th>Meaning</th></tr><tr><td>excel</td><td>the usual dialect</td></tr></table>
</section></section></div>
<div class="footer">© Copyright. <a href="/bugs">Report a Bug</a></div>
<aside>Related links</aside>
</body></html>"""


def html(markup: str, name: str = "page.html") -> Document:
    return parse_document(markup.encode(), name, name)


def test_html_keeps_only_the_main_content_without_permalinks():
    document = html(SPHINX_LIKE)
    for furniture in ("Quick search", "Table of Contents", "Previous topic", "Site banner", "Report a Bug",
                      "Related links", "tracking", "¶", "Logo"):
        assert furniture not in document.text
    assert document.text.startswith("csv — CSV File Reading and Writing\n\nThe csv module implements")
    assert "with open('eggs.csv', newline='') as f:\n    print(f.read())" in document.text  # code keeps its lines
    assert "Name Meaning" in document.text and "excel the usual dialect" in document.text
    assert document.title == "csv — CSV File Reading and Writing"  # the site's name is not the page's
    headings = [(document.text[h.start : h.end], h.level) for h in document.headings]
    assert headings == [("csv — CSV File Reading and Writing", 1), ("Module Contents", 2),
                        ("class csv.DictReader(f, fieldnames=None)", 7)]


def test_html_without_a_main_element_drops_the_furniture_around_its_article():
    markup = ("<html><body><nav>Home | About</nav><article><header><h1>Hives in winter</h1></header>"
              "<p>Bees cluster together.</p><footer>Posted in March</footer></article>"
              "<footer>Site footer</footer></body></html>")
    document = html(markup)
    assert document.text == "Hives in winter\n\nBees cluster together.\n\nPosted in March"
    assert document.title == "Hives in winter"


def test_a_heading_stays_with_its_text_and_starts_a_passage():
    text = (f"# Beekeeping\n\nIntro words here.\n\n## Swarming\n\n{FILLER}\n\n### Signs\n\nQueen cells appear.\n\n"
            f"```\n# not a heading\n```\n\n## Feeding\n\nSugar syrup in autumn.")
    document = parse_document(text.encode(), "bees.md", "bees.md")
    passages = chunk_document(document, ChunkSettings(min_words=40, max_words=150))
    assert [p.text.split("\n")[0] for p in passages] == ["# Beekeeping", "## Swarming", "### Signs", "## Feeding"]
    assert [p.section for p in passages] == ["Beekeeping", "Beekeeping > Swarming", "Beekeeping > Swarming > Signs",
                                             "Beekeeping > Feeding"]
    assert "# not a heading" in passages[2].text  # a fenced code block's "#" is code, not a heading
    for passage in passages:
        assert document.text[passage.start : passage.end] == passage.text


def test_headings_in_a_row_lead_into_the_first_paragraph_after_them():
    document = html("<main><h1>Guide</h1><h2>Setup</h2><h3>Install</h3><p>Run the installer.</p>"
                    f"<h2>Use</h2><p>{FILLER * 3}</p></main>")
    passages = chunk_document(document)
    assert passages[0].text == "Guide\n\nSetup\n\nInstall\n\nRun the installer."
    assert passages[0].section == "Guide > Setup > Install"
    assert passages[1].text.startswith("Use\n\n") and passages[1].section == "Guide > Use"
    assert all(p.section == "Guide > Use" for p in passages[1:])  # a long section's later windows too


def test_a_document_without_headings_has_no_sections_and_no_pages():
    document = Document("plain", "Plain", "", f"{FILLER * 3}\n\nShort one.\n\n{FILLER * 3}")
    passages = chunk_document(document)
    assert [p.section for p in passages] == ["", ""] and all(p.page is None for p in passages)


def test_restructuredtext_titles_become_headings_without_their_adornments():
    text = ("=======\nHoney\n=======\n\nAbout honey.\n\nHarvest\n-------\n\nIn late summer.\n\n"
            "Extracting\n~~~~~~~~~~\n\nSpin the frames.\n\nStorage\n-------\n\nKeep it dry.\n")
    document = parse_document(text.encode(), "honey.rst", "honey.rst")
    assert document.title == "Honey"
    assert "===" not in document.text and "---" not in document.text and "~~~" not in document.text
    assert [(document.text[h.start : h.end], h.level) for h in document.headings] == [
        ("Honey", 1), ("Harvest", 2), ("Extracting", 3), ("Storage", 2)]
    sections = {p.text.split("\n")[0]: p.section for p in chunk_document(document)}
    assert sections["Extracting"] == "Honey > Harvest > Extracting" and sections["Storage"] == "Honey > Storage"


def docx_bytes() -> bytes:
    import docx

    made = docx.Document()
    made.add_paragraph("Hive Manual", style="Title")
    made.add_paragraph("Bees need care.")
    made.add_heading("Inspections", level=1)
    made.add_paragraph("Open the hive on a warm day.")
    made.add_heading("Tools", level=2)
    table = made.add_table(rows=2, cols=2)
    for row, (tool, use) in zip(table.rows, [("smoker", "calms bees"), ("hive tool", "pries frames")]):
        row.cells[0].text, row.cells[1].text = tool, use
    buffer = io.BytesIO()
    made.save(buffer)
    return buffer.getvalue()


def test_a_word_document_keeps_its_title_headings_and_tables():
    document = parse_document(docx_bytes(), "manual.docx", "manual.docx")
    assert document.title == "Hive Manual"
    assert document.text == ("Hive Manual\n\nBees need care.\n\nInspections\n\nOpen the hive on a warm day.\n\n"
                             "Tools\n\nsmoker calms bees\n\nhive tool pries frames")
    assert [(document.text[h.start : h.end], h.level) for h in document.headings] == [
        ("Hive Manual", 1), ("Inspections", 2), ("Tools", 3)]
    assert [p.section for p in chunk_document(document)] == [
        "Hive Manual", "Hive Manual > Inspections", "Hive Manual > Inspections > Tools"]


def test_a_file_that_is_not_a_word_document_is_refused_by_name():
    from qa.errors import UnreadableFile

    with pytest.raises(UnreadableFile, match="broken.docx: not a readable Word document"):
        parse_document(b"PK\x03\x04 not really a zip", "broken.docx", "broken.docx")


def test_pdf_passages_know_their_page():
    pages = [[f"First page sentence {n} about bees and their hives." for n in range(30)], [],
             [f"Third page sentence {n} about honey and its harvest." for n in range(30)]]
    document = parse_document(paged_pdf(pages, "Report"), "report.pdf", "report.pdf")
    passages = chunk_document(document)
    assert {p.page for p in passages if p.text.startswith("First page")} == {1}  # the page it begins on
    assert {p.page for p in passages if p.text.startswith("Third page")} == {3}
    assert document.pages == (0, document.text.index("Third page"), document.text.index("Third page"))


def test_search_results_carry_section_and_page_and_bm25_counts_the_section(tmp_path, embedder):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "bees.md").write_text(f"# Bees\n\n## Swarming\n\n{FILLER * 3}\n\n{FILLER.replace('Bees', 'They') * 3}")
    (folder / "report.pdf").write_bytes(paged_pdf([["Cover page."], ["Varroa mites weaken colonies in spring."]]))
    (folder / "manual.docx").write_bytes(docx_bytes())
    (folder / "honey.rst").write_text("Honey\n=====\n\nAbout honey.\n\nHarvest\n-------\n\nIn late summer, spin the frames.\n")
    report = ingest([folder], EngineChoice(index=tmp_path / "index"), embedder)
    assert report.stored == 4 and report.skipped == []
    searcher = Searcher.open(EmbeddedEngine.open(tmp_path / "index"))
    for question, section in (("when do I spin the frames?", "Honey > Harvest"),
                              ("which tool calms bees?", "Hive Manual > Inspections > Tools")):
        (found,) = searcher.search(SearchRequest(question, 1, "hybrid")).results
        assert found.section == section
    swarming = searcher.search(SearchRequest("swarming", 5, "lexical")).results
    assert swarming and {r.section for r in swarming} == {"Bees > Swarming"}
    assert any("Swarming" not in r.text for r in swarming)  # found by its section's heading alone
    (mites,) = searcher.search(SearchRequest("varroa mites", 1, "hybrid")).results
    assert (mites.doc_id, mites.page, mites.section) == ("docs/report.pdf", 2, "")
    stored, _ = searcher.engine.index.store.document("docs/bees.md")
    assert [stored.text[h.start : h.end] for h in stored.headings] == ["Bees", "Swarming"]  # kept for rebuilds
    page = create_app({"TESTING": True}, searcher=searcher).test_client().get("/?q=varroa+swarming").get_data(True)
    assert '<p class="section">Bees &gt; Swarming</p>' in page and '<span class="page">page 2</span>' in page


def test_an_index_of_the_earlier_format_is_refused_then_rebuilt_by_replace(tmp_path, embedder):
    from qa.errors import IndexUnavailable

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "bees.md").write_text(f"# Bees\n\n## Swarming\n\n{FILLER}")
    root = tmp_path / "index"
    ingest([folder], EngineChoice(index=root), embedder)
    with sqlite3.connect(root / "documents.sqlite") as connection:  # as format 2 left it
        connection.execute("ALTER TABLE passages DROP COLUMN section")
        connection.execute("ALTER TABLE passages DROP COLUMN page")
        connection.execute("ALTER TABLE documents DROP COLUMN structure")
        connection.execute("UPDATE meta SET value = '2' WHERE key = 'format_version'")
    with pytest.raises(IndexUnavailable, match="format version '2'") as refused:
        Searcher.open(EmbeddedEngine.open(root))
    assert refused.value.code == "index_format"
    report = ingest([folder], EngineChoice(index=root), embedder, replace=True)
    assert report.passages == 1
    (result,) = Searcher.open(EmbeddedEngine.open(root)).search(SearchRequest("swarming", 1, "lexical")).results
    assert result.section == "Bees > Swarming"
