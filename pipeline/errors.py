"""Errors meant for the user: the CLI prints their message as one line, without a traceback."""

from graphs.graph import InvalidGraphError


class NncapError(Exception):
    """A problem with the user's request, input or store; the message is one line."""


USER_ERRORS = (NncapError, InvalidGraphError)
