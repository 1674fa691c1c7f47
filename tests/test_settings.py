import json

import pytest

from conftest import REPO

from qa.errors import QAError
from qa.settings import SETTINGS
from qa.web import create_app


def test_every_setting_is_documented_in_the_readme():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [s.env for s in SETTINGS if f"`{s.env}`" not in readme]
    assert not missing, f"README lacks {missing}"


@pytest.mark.parametrize("name, value", [("MAX_BODY_BYTES", "lots"), ("MAX_BODY_BYTES", "0"),
                                         ("QUESTION_CACHE", "-1"), ("BACKEND", "gpu")])
def test_a_bad_setting_is_a_clear_error(searcher, monkeypatch, name, value):
    monkeypatch.setenv(f"QA_{name}", value)
    with pytest.raises(QAError, match=f"QA_{name} must be"):
        create_app({"TESTING": True}, searcher=searcher)


@pytest.mark.parametrize("text, logged", [("no", False), ("off", False), ("0", False), ("false", False),
                                          ("yes", True), ("1", True), ("On", True)])
def test_the_app_reads_a_flag_from_the_environment_as_the_cli_does(searcher, monkeypatch, text, logged):
    from qa.cli import cli

    monkeypatch.setenv("QA_LOG_QUERIES", text)
    assert create_app({"TESTING": True}, searcher=searcher).config["LOG_QUERIES"] is logged
    assert cli.commands["serve"].make_context("serve", []).params["log_queries"] is logged


def test_a_question_is_not_logged_by_an_app_made_by_its_factory_with_log_queries_off(searcher, monkeypatch,
                                                                                      access_lines):
    monkeypatch.setenv("QA_LOG_QUERIES", "no")
    client = create_app({"TESTING": True}, searcher=searcher).test_client()
    assert client.get("/api/search", query_string={"q": "where is the lighthouse keeper?"}).status_code == 200
    assert access_lines and "lighthouse" not in json.dumps(access_lines)


@pytest.mark.parametrize("name, text, value", [("API_TOKEN", "12345", "12345"), ("QUESTION_CACHE", "0", 0),
                                               ("MAX_BODY_BYTES", " 4096 ", 4096), ("BACKEND", "torch", "torch"),
                                               ("API_TOKEN", "", None)])
def test_the_cli_and_the_app_give_a_setting_the_same_value(searcher, monkeypatch, name, text, value):
    from qa.settings import BY_NAME

    monkeypatch.setenv(f"QA_{name}", text)
    assert create_app({"TESTING": True}, searcher=searcher).config[name] == value
    assert BY_NAME[name].from_environment() == value


def test_a_bad_setting_on_the_command_line_is_refused_with_its_option_named():
    from click.testing import CliRunner

    from qa.cli import cli

    refused = CliRunner().invoke(cli, ["serve", "--port", "eighty", "--index", "nowhere"])
    assert refused.exit_code == 2 and "--port must be a whole number" in refused.output
