"""Token joining: the same text whatever whitespace the ASR leaves on its tokens."""

from __future__ import annotations

import pytest

from spark_gateway.speakers.tokens import join_tokens


@pytest.mark.parametrize(
    "tokens",
    [
        ["I'm", "recording", "right", "now", "."],
        [" I'm", " recording", " right", " now", "."],
        ["I'm ", "recording ", "right ", "now", " ."],
        ["\tI'm", "recording\n", "  right", "now", "."],
    ],
)
def test_whitespace_variants_join_identically(tokens: list[str]) -> None:
    assert join_tokens(tokens) == "I'm recording right now."


def test_no_space_before_punctuation() -> None:
    tokens = ["you're", "on", "your", "computer", ",", "right", "?", "Yes", "!", "50", "%"]
    assert join_tokens(tokens) == "you're on your computer, right? Yes! 50%"


def test_brackets_and_contractions_attach() -> None:
    assert join_tokens(["he", "said", "(", "quietly", ")", "do", "n't"]) == (
        "he said (quietly) don't"
    )


def test_empty_and_blank_tokens_dropped() -> None:
    assert join_tokens([]) == ""
    assert join_tokens(["", "  ", "hello", " ", "world"]) == "hello world"


def test_inner_whitespace_collapsed() -> None:
    assert join_tokens(["New  York", "city"]) == "New York city"


def test_groups_join_like_single_calls() -> None:
    from spark_gateway.speakers.tokens import join_token_groups

    groups = [[" Hello", ",", "world ", "."], ["(", "aside", ")"], [], ["do", "n't", "x"]]
    assert join_token_groups(groups) == [join_tokens(g) for g in groups]
