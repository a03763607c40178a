"""hoodypipe: a streaming HTTP pipe relay on Twisted."""

__version__ = "0.1.0"
