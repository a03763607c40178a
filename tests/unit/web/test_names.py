"""Pipe names and the party query parameters, checked on raw request bytes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hoodypipe.core.errors import Refusal
from hoodypipe.web.names import (
    API_PREFIX,
    KNOWN_PARAMS,
    MAX_BYTES,
    MAX_NAME,
    PartyParams,
    check_host,
    check_target,
    parse_party,
    parse_query,
    parse_target,
    refuse_repeated,
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
    ("9223372036854775807", 2**63 - 1),
    ("8388607Ti", 8388607 * 2**40),
    ("9223372T", 9223372 * 10**12),
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


@pytest.mark.parametrize("raw", [
    "9223372036854775808", "9999999999999999999", "9999999999999999999Ti", "8388608Ti",
    "9223373T", "9999999999999999999K", "9000000000Gi",
])
def test_size_beyond_a_signed_64_bit_count_is_400(raw: str) -> None:
    assert MAX_BYTES == 2**63 - 1
    assert refusal(lambda: parse(size=raw)) == (
        400, "size must be at most 9223372036854775807 bytes (2^63-1).", "bad_param")


@pytest.mark.parametrize("query", [
    {"n": ["2", "3"]}, {"n": ["2", "2"]}, {"wait": ["10", "20"]}, {"size": ["1K", "2K"]},
    {"n": ["", "1"]},
])
def test_a_repeated_parameter_is_400(query: dict[str, list[str]]) -> None:
    (key,) = query
    assert refusal(lambda: parse(**query)) == (
        400, f"Parameter {key} given more than once.", "bad_param")


@pytest.mark.parametrize("key", KNOWN_PARAMS)
def test_refuse_repeated_covers_every_parameter_of_the_relay(key: bytes) -> None:
    refuse_repeated({key: [b"1"], b"other": [b"1", b"2"]})
    assert refusal(lambda: refuse_repeated({key: [b"", b""]})) == (
        400, f"Parameter {key.decode()} given more than once.", "bad_param")


def test_unknown_parameters_may_repeat() -> None:
    refuse_repeated(parse_query(b"_=1&_=2&utm=a&utm=b&n=1"))


def test_bare_parameters_are_400() -> None:
    # ?wait (no '=') arrives as an empty value with keep_blank_values.
    assert refusal(lambda: parse_party({b"wait": [b""]}, 300.0, 3600.0, 256))[0] == 400
    assert refusal(lambda: parse_party({b"n": [b""]}, 300.0, 3600.0, 256))[0] == 400
    assert refusal(lambda: parse_party({b"size": [b""]}, 300.0, 3600.0, 256))[0] == 400


def test_unrelated_parameters_are_ignored() -> None:
    assert parse_party({b"progress": [b""], b"x": [b"y"]}, 300.0, 3600.0, 256) == (
        PartyParams(n=1, wait=300.0, size=None))


# -- request targets ---------------------------------------------------------------


@pytest.mark.parametrize(("uri", "parsed"), [
    (b"/a", (b"/a", b"", None)),
    (b"/a?n=1&wait=2", (b"/a", b"n=1&wait=2", None)),
    (b"/a?", (b"/a", b"", None)),
    (b"/a?b?c", (b"/a", b"b?c", None)),
    (b"/", (b"/", b"", None)),
    (b"http://x/a", (b"/a", b"", b"x")),
    (b"http://x/a?wait=1", (b"/a", b"wait=1", b"x")),
    (b"HTTPS://Relay.Example:8443/api/v1/pipe/a", (b"/api/v1/pipe/a", b"", b"Relay.Example:8443")),
    (b"http://x", (b"/", b"", b"x")),
    (b"http://x?status", (b"/", b"status", b"x")),
    (b"http://x:/a", (b"/a", b"", b"x:")),
    (b"http://[::1]:80/a", (b"/a", b"", b"[::1]:80")),
    (b"http://127.0.0.1/a/b/c", (b"/a/b/c", b"", b"127.0.0.1")),
    (b"http://x/a%2Fb", (b"/a%2Fb", b"", b"x")),
    (b"http://x//a", (b"//a", b"", b"x")),
])
def test_parse_target(uri: bytes, parsed: tuple[bytes, bytes, bytes | None]) -> None:
    assert parse_target(uri) == parsed


@pytest.mark.parametrize("uri", [
    b"abc", b"*", b"", b"ftp://x/a", b"http:/a", b"http://", b"http:///a",
    b"http://user@x/a", b"http://user:pw@x/a", b"http://x y/a", b"http://x#f",
    b"//x/a", b"javascript://x/%0aalert(1)", b"localhost:8080",
])
def test_other_targets_are_left_for_check_target(uri: bytes) -> None:
    path, _, authority = parse_target(uri)
    assert authority is None
    assert path == uri.partition(b"?")[0]


@pytest.mark.parametrize(("path", "method"), [
    (b"/", b"GET"), (b"/a", b"GET"), (b"//a", b"POST"), (b"*", b"OPTIONS"),
    (b"/x", b"OPTIONS"),
])
def test_paths_and_options_asterisk_pass(path: bytes, method: bytes) -> None:
    check_target(path, method)


NOT_A_PATH = "The request target must be a path starting with '/'."
NOT_HTTP = "An absolute request target must be an http or https URL with a host."


@pytest.mark.parametrize(("path", "method", "reason"), [
    (b"abc", b"GET", NOT_A_PATH),
    (b"bc", b"PUT", NOT_A_PATH),
    (b"", b"GET", NOT_A_PATH),
    (b"localhost:8080", b"CONNECT", NOT_A_PATH),
    (b"robots.txt", b"GET", NOT_A_PATH),
    (b"*", b"GET", "The request target '*' is only for OPTIONS."),
    (b"*", b"POST", "The request target '*' is only for OPTIONS."),
    (b"ftp://x/a", b"GET", NOT_HTTP),
    (b"http://user@x/a", b"GET", NOT_HTTP),
    (b"http:///a", b"GET", NOT_HTTP),
    (b"javascript://x/a", b"GET", NOT_HTTP),
])
def test_anything_else_is_400(path: bytes, method: bytes, reason: str) -> None:
    assert refusal(lambda: check_target(path, method)) == (400, reason, "bad_target")


# -- the one query parser ------------------------------------------------------------


@pytest.mark.parametrize(("query", "args"), [
    (b"", {}),
    (b"progress", {b"progress": [b""]}),
    (b"status&n=2", {b"status": [b""], b"n": [b"2"]}),
    (b"n=1&n=2", {b"n": [b"1", b"2"]}),
    (b"a=%C3%A9%FF", {b"a": [b"\xc3\xa9\xff"]}),
    (b"a+b=c+d", {b"a b": [b"c d"]}),
    (b"%73tatus", {b"status": [b""]}),
    (b"a=1=2", {b"a": [b"1=2"]}),
    (b"&&a&", {b"a": [b""]}),
    (b"a=%zz", {b"a": [b"%zz"]}),
    (b"a;b=1", {b"a;b": [b"1"]}),
    (b"k=\xff", {b"k": [b"\xff"]}),
])
def test_parse_query(query: bytes, args: dict[bytes, list[bytes]]) -> None:
    assert parse_query(query) == args


@pytest.mark.parametrize("path", [b"/\x80", b"/caf\xc3\xa9", b"\xff"])
def test_a_raw_non_ascii_target_is_400(path: bytes) -> None:
    assert refusal(lambda: check_target(path, b"GET")) == (
        400, "The request target must be percent-encoded ASCII.", "bad_target")


# -- Host -------------------------------------------------------------------------------


@pytest.mark.parametrize("host", [
    b"relay.example", b"relay.example:8080", b"127.0.0.1", b"127.0.0.1:1", b"[::1]",
    b"[::1]:80", b"", b"x:", b"a-b_c~d", b"%41", b"evil'(x)*!$&;=,+",
])
def test_hosts_in_the_grammar_pass(host: bytes) -> None:
    check_host([host], b"HTTP/1.1")
    check_host([host], b"HTTP/1.0")


@pytest.mark.parametrize("host", [
    b"a b", b"a/b", b"a@b", b"a\xffb", b"\xc3\xa9", b'a"b', b"<x>", b"a:b:c", b"[::1",
    b"a\tb", b"a:80x", b"a?b", b"a#b", b"a\\b",
])
def test_hosts_out_of_the_grammar_are_400(host: bytes) -> None:
    assert refusal(lambda: check_host([host], b"HTTP/1.1")) == (
        400, "The Host header is not a host name and port.", "bad_host")


def test_host_is_required_once_in_http_11() -> None:
    assert refusal(lambda: check_host(None, b"HTTP/1.1")) == (
        400, "An HTTP/1.1 request needs a Host header.", "bad_host")
    check_host(None, b"HTTP/1.0")
    assert refusal(lambda: check_host([b"a", b"a"], b"HTTP/1.1")) == (
        400, "More than one Host header.", "bad_host")
    assert refusal(lambda: check_host([b"a", b"b"], b"HTTP/1.0"))[0] == 400
