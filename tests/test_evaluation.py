"""`qa eval` end to end on a small BEIR folder, with the real model."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from qa.beir import load_beir
from qa.cli import cli
from qa.errors import InvalidInput
from qa.evaluation import answer_found

CORPUS = [
    {"_id": "bees", "title": "Honey bees", "text": "A worker honey bee lives for about six weeks in summer."},
    {"_id": "etna", "title": "Mount Etna", "text": "Mount Etna on Sicily is the most active volcano in Europe."},
    {"_id": "nile", "title": "The Nile", "text": "The Nile flows north through eleven countries into the Mediterranean Sea."},
    {"_id": "moon", "title": "The Moon", "text": "Apollo 11 landed the first people on the Moon in July 1969."},
]
QUERIES = [
    {"_id": "q1", "text": "How long does a worker bee live?", "metadata": {"answers": ["six weeks"]}},
    {"_id": "q2", "text": "Which is Europe's most active volcano?", "metadata": {"answers": ["Mount Etna"]}},
    {"_id": "q3", "text": "When did people first land on the Moon?", "metadata": {"answers": ["July 1969"]}},
    {"_id": "q-unjudged", "text": "What is not in the qrels?"},
]


@pytest.fixture
def beir_folder(tmp_path):
    folder = tmp_path / "tiny"
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(row) for row in CORPUS) + "\n")
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(row) for row in QUERIES) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tbees\t1\nq2\tetna\t1\nq3\tmoon\t1\n")
    return folder


def test_qa_eval_prints_and_writes_the_figures(beir_folder, tmp_path):
    out = tmp_path / "figures.json"
    result = CliRunner().invoke(
        cli, ["eval", str(beir_folder), "--cache", str(tmp_path / "cache"), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "tiny: 3 questions, 4 documents" in result.output
    figures = json.loads(out.read_text())
    assert [m["mode"] for m in figures["modes"]] == ["hybrid", "dense", "lexical"]
    for mode in figures["modes"]:
        assert mode["questions"] == 3
        assert mode["nDCG@10"] == 1.0 and mode["R@1"] == 1.0 and mode["MRR@10"] == 1.0
        assert mode["answer_in_first_sentence"] == 1.0

    again = CliRunner().invoke(
        cli, ["eval", str(beir_folder), "--cache", str(tmp_path / "cache"), "--mode", "dense"]
    )
    assert again.exit_code == 0 and len(list((tmp_path / "cache").iterdir())) == 1, "the index is reused"


def test_a_missing_split_or_file_is_a_clear_error(beir_folder):
    with pytest.raises(InvalidInput, match="splits here: test"):
        load_beir(beir_folder, "train")
    (beir_folder / "queries.jsonl").unlink()
    with pytest.raises(InvalidInput, match="queries.jsonl is missing"):
        load_beir(beir_folder)


def test_answer_matching_ignores_case_and_punctuation():
    assert answer_found("Apollo 11 landed in July, 1969.", ["july 1969"])
    assert answer_found("It was the Denver Broncos.", ["Denver Broncos"])
    assert not answer_found("The Broncos won.", ["Denver Broncos"])
    assert not answer_found("In 19690 nothing happened.", ["1969"])
