"""Pipe names and the party query parameters, checked on raw request bytes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hoodypipe.core.errors import Refusal
from hoodypipe.web.names import (
    API_PREFIX,
    MAX_NAME,
    PartyParams,
    parse_party,
    split_target,
    validate_name,
)

SLASHES = "Encoded slashes and backslashes are not allowed in a name."
SEGMENTS = "Empty, '.' and '..' path segments are not allowed."
CONTROL = "Control characters are not allowed in a name."
N_RANGE = "n must be a whole number from 1 to 256."
WAIT_RANGE = "wait must be a whole number of seconds from 1 to 3600."
SIZE_FORMAT = "size must be a byte count like 1048576, 10M or 2Gi."


def refusal(call: Callable[[], object]) -> tuple[int, str, str]:
    with pytest.raises(Refusal) as info:
        call()
    return info.value.status, info.value.reason, info.value.code


# -- split_target -------------------------------------------------------------


@pytest.mark.parametrize(("path", "expected"), [
    (b"/abc", (b"abc", False)),
    (b"/api/v1/pipe/abc", (b"abc", True)),
    (b"/api/v1/pipe/a/b", (b"a/b", True)),
    (b"/api/v1/pipeabc", (b"api/v1/pipeabc", False)),
    (b"/api/v1/pipe", (b"api/v1/pipe", False)),
    (b"/", (b"", False)),
])
def test_split_target(path: bytes, expected: tuple[bytes, bool]) -> None:
    assert split_target(path) == expected


def test_both_routes_give_the_same_name() -> None:
    bare, _ = split_target(b"/my%20pipe")
    api, _ = split_target(API_PREFIX + b"my%20pipe")
    assert validate_name(bare) == validate_name(api) == "my%20pipe"


# -- validate_name ---------------------------------------------------------------


def test_name_of_max_length_is_accepted() -> None:
    assert MAX_NAME == 1024
    name = b"a" * 1024
    assert validate_name(name) == "a" * 1024
    assert validate_name(b"x") == "x"


def test_name_one_over_max_is_414() -> None:
    assert refusal(lambda: validate_name(b"a" * 1025)) == (
        414, "Path too long (max 1024 characters).", "bad_name")
    assert Refusal(414, "Path too long (max 1024 characters).", "x").body == (
        b"[ERROR] Path too long (max 1024 characters).\n")


def test_length_is_checked_before_anything_else() -> None:
    assert refusal(lambda: validate_name(b"%2F" * 400))[0] == 414


@pytest.mark.parametrize("raw", [
    b"a%2Fb", b"a%2fb", b"%2F", b"a%2F", b"a\\b", b"\\", b"a%5Cb", b"a%5cb",
])
def test_encoded_slash_and_backslash_are_400(raw: bytes) -> None:
    assert refusal(lambda: validate_name(raw)) == (400, SLASHES, "bad_name")


@pytest.mark.parametrize("raw", [
    b"a//b", b"a/", b"/a", b"", b".", b"..", b"a/./b", b"a/../b", b"a/..",
    b"%2e", b"%2E", b"%2e%2e", b"%2E%2e", b".%2e", b"a/%2e%2e/b",
])
def test_empty_dot_and_dotdot_segments_are_400(raw: bytes) -> None:
    assert refusal(lambda: validate_name(raw)) == (400, SEGMENTS, "bad_name")


@pytest.mark.parametrize("raw", [
    b"a%00b", b"%0A", b"a%0a", b"%0D", b"%09", b"%1F", b"%7F", b"a%7fb", b"%1b[31m",
])
def test_control_characters_are_400(raw: bytes) -> None:
    assert refusal(lambda: validate_name(raw)) == (400, CONTROL, "bad_name")


@pytest.mark.parametrize("raw", [b"caf\xc3\xa9", b"\xff"])
def test_raw_non_ascii_is_400(raw: bytes) -> None:
    assert refusal(lambda: validate_name(raw)) == (
        400, "A name must be percent-encoded ASCII.", "bad_name")


@pytest.mark.parametrize("raw", [
    b"a/b", b"a/b/c", b"...", b".hidden", b"a.", b"a..b", b"%20", b"caf%C3%A9",
    b"%252F", b"a-b_c~d", b"%7E", b"with space?no", b"%25",
])
def test_ordinary_names_are_returned_as_sent(raw: bytes) -> None:
    assert validate_name(raw) == raw.decode("ascii")


def test_names_are_case_sensitive_and_exact() -> None:
    assert validate_name(b"MyPipe") == "MyPipe"
    assert validate_name(b"mypipe") == "mypipe"
    assert validate_name(b"MyPipe") != validate_name(b"mypipe")
    # Compared as sent: an encoded letter is another name than the letter.
    assert validate_name(b"%41") == "%41"
    assert validate_name(b"%41") != validate_name(b"A")


# -- parse_party -------------------------------------------------------------------


def parse(**query: str | list[str]) -> PartyParams:
    args = {k.encode(): ([v] if isinstance(v, str) else v) for k, v in query.items()}
    encoded = {k: [x.encode("latin-1") for x in v] for k, v in args.items()}
    return parse_party(encoded, 300.0, 3600.0, 256)


def test_defaults() -> None:
    assert parse() == PartyParams(n=1, wait=300.0, size=None)


@pytest.mark.parametrize(("raw", "n"), [("1", 1), ("2", 2), ("256", 256), ("007", 7)])
def test_n_in_range(raw: str, n: int) -> None:
    assert parse(n=raw).n == n


@pytest.mark.parametrize("raw", ["0", "257", "abc", "1.5", "", "-1", "+1", " 1",
                                 "1 ", "0x10", "1e2", "99999999999999999999"])
def test_n_out_of_range_or_malformed_is_400(raw: str) -> None:
    assert refusal(lambda: parse(n=raw)) == (400, N_RANGE, "bad_param")


def test_n_limit_follows_settings() -> None:
    assert parse_party({b"n": [b"5"]}, 300.0, 3600.0, 5).n == 5
    assert refusal(lambda: parse_party({b"n": [b"6"]}, 300.0, 3600.0, 5)) == (
        400, "n must be a whole number from 1 to 5.", "bad_param")


@pytest.mark.parametrize(("raw", "wait"), [("1", 1.0), ("30", 30.0), ("3600", 3600.0)])
def test_wait_in_range(raw: str, wait: float) -> None:
    params = parse(wait=raw)
    assert params.wait == wait
    assert isinstance(params.wait, float)


@pytest.mark.parametrize("raw", ["abc", "0", "1.5", "", "3601", "-5", "1s", "inf",
                                 "nan"])
def test_wait_out_of_range_or_malformed_is_400(raw: str) -> None:
    assert refusal(lambda: parse(wait=raw)) == (400, WAIT_RANGE, "bad_param")


# Regression (fixed in 7993d3f): str.isdigit() let '\u00b2' and over-long digit
# strings through to int(), which raised (a 500).
@pytest.mark.parametrize("query", [
    {"n": "\xb2"}, {"n": "1\xb9"}, {"wait": "\xb3"}, {"n": "0" * 4300 + "1"},
    {"wait": "9" * 5000},
])
def test_exotic_digits_are_400_not_a_crash(query: dict[str, str]) -> None:
    status, _, code = refusal(lambda: parse(**query))
    assert (status, code) == (400, "bad_param")


@pytest.mark.parametrize(("raw", "size"), [
    ("0", 0),
    ("10", 10),
    ("10K", 10_000),
    ("10M", 10_000_000),
    ("3G", 3_000_000_000),
    ("1T", 10**12),
    ("5Ki", 5 * 1024),
    ("7Mi", 7 * 2**20),
    ("2Gi", 2 * 2**30),
    ("1Ti", 2**40),
    ("1048576", 1048576),
    ("9999999999999999999", 9999999999999999999),
])
def test_size_units(raw: str, size: int) -> None:
    assert parse(size=raw).size == size


@pytest.mark.parametrize("raw", [
    "", "abc", "10k", "10m", "10KB", "10Kib", "10KiB", "1.5G", "-1", "G", "10 M",
    " 10", "10B", "10E", "10P", "Ki", "0x10", "99999999999999999999",
])
def test_bad_size_is_400(raw: str) -> None:
    assert refusal(lambda: parse(size=raw)) == (400, SIZE_FORMAT, "bad_param")


# Regression (fixed in 7993d3f): '$' also matched before a final newline.
def test_size_with_a_trailing_newline_is_400() -> None:
    assert refusal(lambda: parse(size="10\n")) == (400, SIZE_FORMAT, "bad_param")


def test_last_value_of_a_repeated_parameter_wins() -> None:
    assert parse(n=["2", "3"], wait=["10", "20"], size=["1K", "2K"]) == PartyParams(
        n=3, wait=20.0, size=2000)


def test_bare_parameters_are_400() -> None:
    # ?wait (no '=') arrives as an empty value with keep_blank_values.
    assert refusal(lambda: parse_party({b"wait": [b""]}, 300.0, 3600.0, 256))[0] == 400
    assert refusal(lambda: parse_party({b"n": [b""]}, 300.0, 3600.0, 256))[0] == 400
    assert refusal(lambda: parse_party({b"size": [b""]}, 300.0, 3600.0, 256))[0] == 400


def test_unrelated_parameters_are_ignored() -> None:
    assert parse_party({b"progress": [b""], b"x": [b"y"]}, 300.0, 3600.0, 256) == (
        PartyParams(n=1, wait=300.0, size=None))
