"""Errors meant for the user: the CLI prints their message as one line, without a traceback."""

import tomllib
from pathlib import Path

from graphs.graph import InvalidGraphError


class NncapError(Exception):
    """A problem with the user's request, input or store; the message is one line."""


USER_ERRORS = (NncapError, InvalidGraphError)


def one_line(error: BaseException, limit: int | None = None) -> str:
    """An error's message with its whitespace (newlines included) collapsed, cut to ``limit`` characters."""
    return " ".join(str(error).split())[:limit]


def read_toml(path: Path, what: str) -> dict:
    """A TOML file as a dict; a missing or malformed file is a one-line NncapError naming ``what``."""
    if not path.is_file():
        raise NncapError(f"no {what} at {path}")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise NncapError(f"{path}: not valid TOML ({e})") from None
