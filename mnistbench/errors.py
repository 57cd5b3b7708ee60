"""A user's mistake in a configuration, and how a wrong value is shown in its one-line message. Apart from
config.py so that the registry and the family modules can raise it without importing the run config."""
from __future__ import annotations


class ConfigError(ValueError):
    """A user mistake in a configuration: the CLI prints it as one line and exits 2."""


class ConfigTypeError(ConfigError, TypeError):
    """A ConfigError for a value of the wrong type (a string for a number, 1.5 for an integer, a
    factory that is not callable); a TypeError too, for code that catches those."""


def shown(value) -> str:
    """A wrong value as a message shows it: its repr and its type, so "0.1" (a string) is not read as 0.1."""
    text = repr(value)
    return f"{text if len(text) <= 60 else text[:57] + '...'} ({type(value).__name__})"
