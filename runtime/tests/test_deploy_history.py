"""What `make rollback` goes back to: the published tag that ran before the current deploy."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyserve_runtime.deploy_history import NothingToGoBackTo, previous_tag, record


@pytest.fixture
def history(tmp_path: Path) -> Path:
    return tmp_path / ".deploy-history"


def deployed(history: Path, *tags: str | None) -> None:
    for tag in tags:
        record(history, tag)


def test_a_rollback_goes_to_the_tag_before_the_current_one(history: Path) -> None:
    deployed(history, "v1", "v2", "v3")
    assert previous_tag(history) == "v2"
    assert [line.split()[1] for line in history.read_text().splitlines()] == ["v1", "v2", "v3"]


def test_after_a_rollback_the_next_one_goes_back_to_where_it_came_from(history: Path) -> None:
    deployed(history, "v1", "v2", "v1")
    assert previous_tag(history) == "v2"


def test_a_build_of_the_checkout_is_no_version_to_go_back_to(history: Path) -> None:
    deployed(history, "v1", None, "v2", None)
    assert previous_tag(history) == "v2"
    deployed(history, "v2")
    assert previous_tag(history) == "v1"


def test_with_nothing_earlier_it_refuses_in_one_line(history: Path) -> None:
    with pytest.raises(NothingToGoBackTo, match="^nothing was deployed here yet"):
        previous_tag(history)
    deployed(history, None, "v1")
    with pytest.raises(NothingToGoBackTo, match="^no published version ran here before v1"):
        previous_tag(history)
