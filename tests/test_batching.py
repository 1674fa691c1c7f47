"""Micro-batching of concurrent questions, with a slow stand-in for the model."""

from __future__ import annotations

import threading
import time

import pytest

from qa.batching import MicroBatcher


class SlowModel:
    """Takes 50 ms per call whatever the batch, like one model call on a busy CPU."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.fail_on = fail_on
        self.running = self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self, items: list[str]) -> list[str]:
        with self._lock:
            self.batches.append(list(items))
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        time.sleep(0.05)
        with self._lock:
            self.running -= 1
        if self.fail_on in items:
            raise RuntimeError("model failed")
        return [item.upper() for item in items]


def ask_together(batcher, items: list[str]) -> dict[str, object]:
    answers: dict[str, object] = {}

    def ask(item: str) -> None:
        try:
            answers[item] = batcher(item)
        except RuntimeError as error:
            answers[item] = error

    threads = [threading.Thread(target=ask, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return answers


def test_a_lone_question_is_answered_at_once():
    model = SlowModel()
    assert MicroBatcher(model)("one") == "ONE"
    assert model.batches == [["one"]]


def test_concurrent_questions_share_model_calls_and_each_gets_its_own_answer():
    model = SlowModel()
    items = [f"q{i}" for i in range(16)]
    answers = ask_together(MicroBatcher(model, max_batch=8), items)
    assert answers == {item: item.upper() for item in items}
    assert sorted(i for batch in model.batches for i in batch) == sorted(items)
    assert len(model.batches) < len(items) and max(map(len, model.batches)) <= 8


def test_workers_run_batches_side_by_side_and_never_more():
    model = SlowModel()
    items = [f"q{i}" for i in range(40)]
    batcher = MicroBatcher(model, max_batch=4, workers=2)
    answers = ask_together(batcher, items)
    assert answers == {item: item.upper() for item in items}
    assert model.most_at_once == 2
    assert sorted(i for batch in model.batches for i in batch) == sorted(items)
    for round_ in range(3):  # no worker slot is lost: later questions are still answered
        assert ask_together(batcher, [f"r{round_}-{i}" for i in range(9)]) == {
            f"r{round_}-{i}": f"R{round_}-{i}" for i in range(9)}
    assert batcher._running == 0


def test_a_failing_batch_fails_its_callers_and_the_next_batch_still_runs():
    model = SlowModel(fail_on="bad")
    batcher = MicroBatcher(model)
    answers = ask_together(batcher, ["bad", "q1", "q2", "q3"])
    failed = [item for item, answer in answers.items() if isinstance(answer, RuntimeError)]
    assert "bad" in failed
    assert all(answers[item] == item.upper() for item in answers if item not in failed)
    assert batcher("after") == "AFTER"
    with pytest.raises(RuntimeError):
        batcher("bad")
