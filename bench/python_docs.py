"""Real documentation no one here wrote: the tutorial and how-to pages of Python 3.11.

    python -m bench.python_docs [--html /usr/share/doc/python3.11/html] [--json FILE]
                                [--flat] [--no-section-terms]

Ingests ``html/tutorial/`` and ``html/howto/`` (Debian's ``python3.11-doc``; the
``library/`` pages are kept aside as an independent check) with the bundled model
and asks the questions in ``bench/python_docs_questions.json``, each with the page
that answers it and a string of that page's text that the answer holds. Prints:

- hit@1 and hit@3: a result from that page whose passage holds the answer string;
- answer sentence: the top result's answer sentence holds the answer string;
- passages that hold navigation (the sidebar, "Previous topic", "Quick search") or
  Sphinx's "¶" permalinks, out of all passages; and passages that hold only
  headings, cut off from the text they head.

``--flat`` ingests the pages without their headings (passages cut by paragraphs
alone, no sections); ``--no-section-terms`` leaves sections out of BM25: each
measures one change on its own.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

from qa.chunking import ChunkSettings
from qa.embedded import EmbeddedEngine
from qa.embedding import DEFAULT_MODEL, Embedder
from qa.index import Index, open_store
from qa.ingest import index_meta, read_documents, store_documents
from qa.lexical import LexicalSettings
from qa.search import Searcher, SearchRequest

HTML = Path("/usr/share/doc/python3.11/html")
QUESTIONS = Path(__file__).with_name("python_docs_questions.json")
FOLDERS = ("tutorial", "howto")
NAVIGATION = ("Table of Contents", "Previous topic", "Next topic", "Quick search", "Report a Bug", "¶")


def normal(text: str) -> str:
    """Lower case, one space between words, straight quotes: how answers are compared."""
    return " ".join(text.replace("’", "'").replace("“", '"').replace("”", '"').lower().split())


def run(html: Path, flat: bool = False, section_terms: bool = True) -> dict[str, float]:
    questions = json.loads(QUESTIONS.read_text())
    embedder = Embedder(DEFAULT_MODEL)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "index"
        pages = read_documents([html / name for name in FOLDERS])
        if flat:
            pages = (dataclasses.replace(page, headings=()) for page in pages)
        writer = Index.open_for_writing(root, index_meta(embedder, ChunkSettings()))
        report = store_documents(EmbeddedEngine(writer), embedder, pages)
        writer.close()
        lexical = LexicalSettings(section_in_every_passage=section_terms)
        searcher = Searcher(EmbeddedEngine(Index(root, open_store(root), lexical)), embedder)
        store = searcher.engine.index.store
        stored = [store.document(doc_id) for doc_id in set(store.row_documents().values())]
        passages = [p.text for _, found in stored for p in found]
        navigation = sum(any(mark in text for mark in NAVIGATION) for text in passages)
        headings_alone = sum(only_headings(p.text, d.title, p.section) for d, found in stored for p in found)
        hits1 = hits3 = answered = 0
        for question in questions:
            results = searcher.search(SearchRequest(question["question"], 3, "hybrid")).results
            answer = normal(question["answer"])
            found = [r.doc_id.endswith(question["page"]) and answer in normal(r.text) for r in results]
            hits1 += found[:1] == [True]
            hits3 += any(found)
            answered += found[:1] == [True] and answer in normal(results[0].answer.text)
        searcher.engine.index.close()
    n = len(questions)
    return {"questions": n, "hit@1": hits1 / n, "hit@3": hits3 / n, "answer_sentence": answered / n,
            "passages": len(passages), "navigation_passages": navigation, "heading_only_passages": headings_alone,
            "documents": report.documents}


def only_headings(text: str, title: str, section: str) -> bool:
    """Whether every line of a passage is a heading of its section path (or the title)."""
    names = {normal(name) for name in [title, *section.split(" > ")]} if section else {normal(title)}
    return all(normal(line) in names for line in text.splitlines() if line.strip())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.python_docs", description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=HTML, help=f"Sphinx HTML of Python 3.11. [default: {HTML}]")
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    parser.add_argument("--flat", action="store_true", help="Ingest the pages without their headings.")
    parser.add_argument("--no-section-terms", action="store_true", help="Leave sections out of BM25.")
    args = parser.parse_args()
    figures = run(args.html, args.flat, not args.no_section_terms)
    for name, value in figures.items():
        print(f"{name:22} {value:.3f}" if isinstance(value, float) else f"{name:22} {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")


if __name__ == "__main__":
    main()
