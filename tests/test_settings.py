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
