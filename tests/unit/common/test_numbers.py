"""The positive-number parsers shared by twistd's options and the client's."""

from __future__ import annotations

import argparse

import pytest

from hoodypipe.common.numbers import NotPositive, positive_float, positive_int


@pytest.mark.parametrize("text, number", [("1", 1), ("65536", 65536), (" 7 ", 7)])
def test_positive_int(text: str, number: int) -> None:
    assert positive_int(text) == number


@pytest.mark.parametrize("text", ["0", "-1"])
def test_positive_int_refuses_what_is_not_positive(text: str) -> None:
    with pytest.raises(NotPositive, match="at least 1"):
        positive_int(text)


@pytest.mark.parametrize("text", ["1.5", "many", ""])
def test_positive_int_refuses_what_is_not_a_whole_number(text: str) -> None:
    with pytest.raises(ValueError):
        positive_int(text)


@pytest.mark.parametrize("text, number", [("0.25", 0.25), ("3600", 3600.0), ("1e3", 1000.0)])
def test_positive_float(text: str, number: float) -> None:
    assert positive_float(text) == number


@pytest.mark.parametrize("text", ["0", "-0.5", "nan", "-inf"])
def test_positive_float_refuses_what_is_not_above_zero(text: str) -> None:
    with pytest.raises(NotPositive, match="above 0"):
        positive_float(text)


def test_argparse_shows_the_reason() -> None:
    parser = argparse.ArgumentParser(exit_on_error=False)
    parser.add_argument("--tries", type=positive_int)
    with pytest.raises(argparse.ArgumentError, match="must be a whole number of at least 1"):
        parser.parse_args(["--tries", "0"])
