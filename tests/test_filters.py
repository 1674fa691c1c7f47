"""Filtered search: only documents that match, and always k of them when k match."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from qa import embedded as search_module
from qa import vector_store
from qa.chunking import ChunkSettings
from qa.documents import Document
from qa.embedded import EmbeddedEngine
from qa.errors import InvalidInput
from qa.filters import SearchFilter
from qa.index import Index
from qa.ingest import index_meta, store_documents
from qa.search import Searcher, SearchRequest
from qa.web import create_app

BEES = "Honey bees forage for nectar and pollen, and the colony stores honey in wax combs for winter."
OTHER = "Granite forms from slowly cooling magma deep below the surface of the earth."


def documents() -> list[Document]:
    """250 documents about bees from one source, then 6 about rocks from two others;
    each with metadata to filter on."""
    made = [Document(f"bees/{n:03}", f"Bees {n}", "apiary.org", f"{BEES} Note {n}.",
                     {"year": 2020 + n % 3, "tags": ["insects", "farming"], "reviewed": n % 2 == 0})
            for n in range(250)]
    made += [Document(f"rocks/{n}", f"Rocks {n}", "geology.net" if n < 3 else "stones.example",
                      f"{OTHER} Sample {n}. Bees never nest in it.",
                      {"year": 2021 if n < 4 else "2021", "tags": "minerals"})
             for n in range(6)]
    return made


@pytest.fixture(scope="module")
def filtered(tmp_path_factory, embedder):
    """The real model, so that every rock ranks below every bee on the dense side too."""
    root = tmp_path_factory.mktemp("filtered") / "index"
    index = Index.open_for_writing(root, index_meta(embedder, ChunkSettings()))
    store_documents(EmbeddedEngine(index), embedder, documents())
    return Searcher(EmbeddedEngine(index), embedder)


def doc_ids(searcher: Searcher, question: str, mode: str, search_filter: SearchFilter | None, k: int = 5) -> list[str]:
    return [r.doc_id for r in searcher.search(SearchRequest(question, k, mode, search_filter)).results]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
@pytest.mark.parametrize("whole_arrays_up_to", [search_module.WHOLE_ARRAYS_UP_TO, 10])
def test_a_filter_never_starves_results(filtered, mode, whole_arrays_up_to, monkeypatch):
    monkeypatch.setattr(search_module, "WHOLE_ARRAYS_UP_TO", whole_arrays_up_to)  # both ways of fusing
    unfiltered = doc_ids(filtered, "honey bees nectar", mode, None, k=200)
    assert not any(d.startswith("rocks/") for d in unfiltered)  # every rock ranks below the unfiltered top 200
    rocks = doc_ids(filtered, "honey bees nectar", mode, SearchFilter(doc_id_prefix="rocks/"))
    assert len(rocks) == 5 and all(d.startswith("rocks/") for d in rocks)
    geology = doc_ids(filtered, "honey bees nectar", mode, SearchFilter(source="geology.net"))
    assert sorted(geology) == ["rocks/0", "rocks/1", "rocks/2"]  # only 3 match: 3 results, not 5


def test_metadata_values_match_with_their_json_type_and_inside_lists(filtered):
    def found(**metadata) -> list[str]:
        return sorted(doc_ids(filtered, "granite magma", "lexical",
                              SearchFilter.from_json({"metadata": metadata}), k=50))

    assert found(year=2021) == ["rocks/0", "rocks/1", "rocks/2", "rocks/3"]
    assert found(year="2021") == ["rocks/4", "rocks/5"]  # the text "2021" is not the number
    assert found(year=[2021, "2021"], tags="minerals") == [f"rocks/{n}" for n in range(6)]
    assert found(tags="minerals", year=2022) == []
    wanted = SearchFilter.from_json({"metadata": {"tags": "insects", "reviewed": True, "year": 2022}})
    bees = doc_ids(filtered, "honey", "lexical", wanted, 50)
    assert sorted(bees) == [f"bees/{n:03}" for n in range(250) if n % 2 == 0 and 2020 + n % 3 == 2022]  # 42 of them


def test_a_url_value_also_matches_the_number_it_spells():
    from_url = SearchFilter.from_query({"meta.year": ["2021"], "meta.reviewed": ["true"], "source": ["a"]})
    assert from_url is not None and dict(from_url.metadata)["year"] == (("text", "2021"), ("number", 2021.0))
    assert dict(from_url.metadata)["reviewed"] == (("text", "true"), ("true", None))
    assert from_url.as_json() == {"source": "a", "metadata": {"reviewed": ["true", True], "year": ["2021", 2021]}}
    assert SearchFilter.from_query({}) is None and SearchFilter.from_json({}) is None


@pytest.mark.parametrize("bad", [
    "apiary.org", ["source"], {"sauce": "x"}, {"source": ""}, {"source": 5}, {"doc_id_prefix": None, "x": 1},
    {"metadata": []}, {"metadata": {"k": {"nested": 1}}}, {"metadata": {"k": []}}, {"metadata": {"": 1}},
    {"metadata": {f"k{n}": 1 for n in range(21)}}, {"metadata": {"k": 10**400}}, {"metadata": {"k": [[1]]}},
])
def test_a_bad_filter_is_refused(bad):
    with pytest.raises(InvalidInput) as refused:
        SearchFilter.from_json(bad)
    assert refused.value.code == "invalid_filter"


def test_an_approximate_index_searches_only_the_allowed_vectors(monkeypatch):
    monkeypatch.setattr(vector_store, "EXACT_UP_TO", 1000)
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((40, 32)).astype(np.float32)
    vectors = centres[rng.integers(0, 40, 6000)] + 0.3 * rng.standard_normal((6000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store = vector_store.VectorStore.build(vectors)
    assert store.kind == "ivf"
    allowed = np.sort(rng.choice(6000, 60, replace=False))
    for query in vectors[rng.choice(6000, 20, replace=False)]:
        _, (positions,) = store.search(query[np.newaxis], 10, vector_store.Selection.of_positions(allowed, 6000))
        exact = allowed[np.argsort(-(vectors[allowed] @ query), kind="stable")[:10]]
        assert positions.tolist() == exact.tolist()


def test_the_api_filters_by_url_and_by_body(filtered):
    client = create_app({"TESTING": True}, searcher=filtered).test_client()
    by_url = client.get("/api/search", query_string={"q": "honey bees", "source": "stones.example", "k": 10})
    assert by_url.status_code == 200
    assert {r["source"] for r in by_url.get_json()["results"]} == {"stones.example"}
    assert by_url.get_json()["filter"] == {"source": "stones.example"}
    repeated = client.get("/api/search?q=granite&meta.year=2021&meta.year=2020&mode=lexical&k=50").get_json()
    assert sorted(r["doc_id"] for r in repeated["results"]) == ["rocks/0", "rocks/1", "rocks/2", "rocks/3",
                                                                "rocks/4", "rocks/5"]  # "2021" and 2021 alike
    body = {"q": "honey bees", "filter": {"doc_id_prefix": "rocks/", "metadata": {"year": "2021"}}}
    by_body = client.post("/api/search", json=body).get_json()
    assert [r["doc_id"] for r in by_body["results"]] in (["rocks/4", "rocks/5"], ["rocks/5", "rocks/4"])
    for bad in ({"q": "x", "filter": {"source": ""}}, {"q": "x", "filter": "geology.net"}):
        refused = client.post("/api/search", json=bad)
        assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "invalid_filter"
    twice = client.get("/api/search?q=x&source=a&source=b")
    assert twice.status_code == 400 and twice.get_json()["error"]["code"] == "invalid_filter"


def test_the_page_offers_the_sources_and_keeps_the_one_chosen(filtered):
    client = create_app({"TESTING": True}, searcher=filtered).test_client()
    page = client.get("/?q=honey+bees&source=geology.net").get_data(as_text=True)
    for source in ("apiary.org", "geology.net", "stones.example"):
        assert f'<option value="{source}"' in page
    assert '<option value="geology.net" selected>' in page
    assert page.count('class="where">geology.net<') == 3 and "apiary.org</span>" not in page
    assert client.get("/?q=honey&source=").status_code == 200  # "all sources"


def test_qa_ask_filters(filtered):
    run = [sys.executable, "-m", "qa", "ask", "honey bees", "--index", str(filtered.engine.index.root), "--json", "-k", "10"]
    done = subprocess.run([*run, "--doc-id-prefix", "rocks/", "--meta", "year=2021", "--meta", "tags=minerals"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(r["doc_id"] for r in json.loads(done.stdout)["results"]) == [f"rocks/{n}" for n in range(6)]
    bad = subprocess.run([*run, "--meta", "year"], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "KEY=VALUE" in bad.stderr
