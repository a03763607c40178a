"""
Positive numbers from a command line, for the server's twistd options and the
``hoodypipe`` client's arguments alike.

Each parser raises ``NotPositive`` for a number out of range: it is a
``ValueError`` (what ``tap`` catches to word a ``UsageError``) and an
``argparse.ArgumentTypeError`` (whose message argparse shows as it is). Text
that is no number at all raises the plain ``ValueError`` of ``int``/``float``.
"""

from __future__ import annotations

import argparse


class NotPositive(argparse.ArgumentTypeError, ValueError):
    """A number given where only a positive one makes sense."""


def positive_int(text: str) -> int:
    number = int(text)
    if number < 1:
        raise NotPositive("must be a whole number of at least 1")
    return number


def positive_float(text: str) -> float:
    number = float(text)
    if not number > 0:  # also refuses nan
        raise NotPositive("must be a number above 0")
    return number
