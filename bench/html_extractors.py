"""qa's HTML reader beside trafilatura, on the Python 3.11 tutorial and how-to pages.

    python -m bench.html_extractors [--html /usr/share/doc/python3.11/html] [--trafilatura PYTHON]

``--trafilatura`` names a Python with trafilatura installed (it is not one of qa's
dependencies); without it, only qa's reader is measured. For each extractor it
prints, over the pages: characters kept; pages whose text holds navigation
(bench/python_docs.py's marks); pages holding "¶" permalinks; the share of code lines (``>>>`` lines of the
pages' ``<pre>`` blocks) kept, and of section headings (``h2``, ``h3``) kept as a
line of their own; the headings each reports as structure; seconds per page.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import time
from html import unescape
from pathlib import Path

from bench.python_docs import FOLDERS, HTML, NAVIGATION
from qa.markup import page_text

_TRAFILATURA = """
import json, sys, time, trafilatura
out = []
for path in json.load(sys.stdin):
    markup = open(path, encoding="utf-8").read()
    started = time.perf_counter()
    text = trafilatura.extract(markup, output_format="markdown", include_formatting=False, include_tables=True,
                               include_comments=False, favor_recall=True) or ""
    out.append([text, time.perf_counter() - started])
json.dump(out, sys.stdout)
"""
_TAG = re.compile(r"<[^>]+>")


def pages(html: Path) -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (html / folder).glob("*.html"))


def truth(markup: str) -> tuple[list[str], list[str]]:
    """The ``>>>`` code lines and the h2/h3 heading texts of a page's main content
    (Sphinx's ``role="main"`` block, before its sidebar), as the page has them."""
    markup = markup[markup.index('role="main"') :].split('<div class="sphinxsidebar"')[0]
    code = [line.strip() for block in re.findall(r"<pre>(.*?)</pre>", markup, re.DOTALL)
            for line in unescape(_TAG.sub("", block)).splitlines() if line.startswith(">>> ")]
    headings = [" ".join(unescape(_TAG.sub("", h)).replace("¶", "").split())
                for h in re.findall(r"<h[23]>(.*?)</h[23]>", markup, re.DOTALL)]
    return code, headings


def measure(texts: list[str], seconds: list[float], structure: list[int], markups: list[str]) -> dict[str, float]:
    code_kept = code_all = headings_kept = headings_all = 0
    for text, markup in zip(texts, markups):
        # Markdown's "#" and `code` marks, and the "¶" after a heading, are not the heading's words.
        lines = {" ".join(line.lstrip("#").replace("`", "").replace("¶", "").split()) for line in text.splitlines()}
        code, headings = truth(markup)
        code_all += len(code)
        code_kept += sum(line in text for line in code)
        headings_all += len(headings)
        headings_kept += sum(h in lines for h in headings)
    navigation = [mark for mark in NAVIGATION if mark != "¶"]
    return {"characters": sum(map(len, texts)),
            "pages_with_navigation": sum(any(m in t for m in navigation) for t in texts),
            "pages_with_permalinks": sum("¶" in t for t in texts),
            "code_lines_kept": code_kept / max(1, code_all), "headings_kept": headings_kept / max(1, headings_all),
            "headings_as_structure": sum(structure), "ms_per_page": 1000 * sum(seconds) / len(texts)}


def run(html: Path, trafilatura: str | None) -> dict[str, dict[str, float]]:
    paths = pages(html)
    markups = [p.read_text(encoding="utf-8") for p in paths]
    texts, seconds, structure = [], [], []
    for markup in markups:
        started = time.perf_counter()
        page = page_text(markup)
        seconds.append(time.perf_counter() - started)
        texts.append(page.text)
        structure.append(len(page.headings))
    figures = {"qa": measure(texts, seconds, structure, markups)}
    if trafilatura:
        done = subprocess.run([trafilatura, "-c", _TRAFILATURA], input=json.dumps([str(p) for p in paths]),
                              capture_output=True, text=True, check=True)
        found = json.loads(done.stdout)
        texts = [text for text, _ in found]
        headings = [sum(line.startswith("#") for line in text.splitlines()) for text in texts]
        figures["trafilatura"] = measure(texts, [s for _, s in found], headings, markups)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.html_extractors", description=__doc__.splitlines()[0])
    parser.add_argument("--html", type=Path, default=HTML, help=f"Sphinx HTML of Python 3.11. [default: {HTML}]")
    parser.add_argument("--trafilatura", metavar="PYTHON", help="A Python with trafilatura installed.")
    args = parser.parse_args()
    figures = run(args.html, args.trafilatura)
    names = list(next(iter(figures.values())))
    print("| extractor | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for extractor, values in figures.items():
        cells = [f"{v:.3f}" if isinstance(v, float) and v <= 1 else f"{v:,.0f}" for v in values.values()]
        print(f"| {extractor} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
