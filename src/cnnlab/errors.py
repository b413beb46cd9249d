"""User-facing errors.

Every error a user can cause (a wrong name, a wrong size, a missing file) is a :class:`CnnlabError`
whose message is one line that says what was wrong and how to fix it. The command line prints that
line and exits with code 2; Python callers can catch the class or its standard-library base.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CnnlabError(Exception):
    """Base class of the errors a user can cause; the message is one actionable line."""


class UnknownNameError(CnnlabError, KeyError):
    """A model, dataset or option name that does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InputSizeError(CnnlabError, ValueError):
    """An input tensor a model cannot take (too small, wrong channels)."""


class ShapeArithmeticError(CnnlabError, ValueError):
    """An impossible convolution or pooling configuration."""


class WeightsError(CnnlabError, ValueError):
    """A weights file that does not fit the model it is loaded into."""


class EmptySplitError(CnnlabError, ValueError):
    """A dataset too small for a split its fractions ask for: no image falls into it."""


class TrainingSplitWarning(UserWarning):
    """A warning about what a run trains on (a label budget some classes cannot fill): a reader that loads the
    run's data to evaluate or explain it does not repeat it."""


def unknown_name(kind: str, name: str, choices: Iterable[str], hint: str = "") -> UnknownNameError:
    """Build the error for an unknown ``name``, suggesting the closest ``choices``."""
    choices = sorted(choices)
    if not isinstance(name, str):  # a class or None where a name was meant
        return UnknownNameError(f"a {kind} is given by its name, a string such as {choices[0]!r}; got {name!r}")
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if close:
        msg = f"unknown {kind} '{name}'; did you mean {', '.join(repr(c) for c in close)}?"
    else:
        shown = ", ".join(choices[:12]) + (", ..." if len(choices) > 12 else "")
        msg = f"unknown {kind} '{name}'; choose one of: {shown}"
    if hint:
        msg += f" ({hint})"
    return UnknownNameError(msg)
