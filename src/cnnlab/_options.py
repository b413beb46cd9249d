"""Options declared once: each field of a config dataclass carries its help, its choices and its range beside
its type, and one check serves every way a value arrives (Python, a config file, the command line).

>>> @dataclass
... class Config:
...     epochs: int = option(40, "epochs to train", low=1, high=100_000)
>>> check(Config(epochs=0))
Traceback (most recent call last):
cnnlab.errors.CnnlabError: epochs must be an integer from 1 to 100000, got 0

The command line builds its options from the same fields (``cnnlab.cli``): a value is parsed and checked
before anything runs, and the message names the flag; a config file names the key and the file.

A leaf module: it imports nothing from cnnlab but its errors.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import CnnlabError

Bound = float | Callable[[], float] | None  # a number, or a function giving it (e.g. the cores available)


def option(default: Any, help: str, *, choices: Iterable[Any] | None = None, low: Bound = None,
           high: Bound = None, above: Bound = None, below: Bound = None, pattern: str | None = None,
           shown: str | None = None, flag: str | None = None, metavar: str | None = None, cli: bool = True,
           applies: tuple[str, Iterable[Any]] | None = None, fixed: bool = False, unset: str | None = None,
           session: bool = False) -> Any:
    """A dataclass field with what a user needs to know about it.

    Args:
        default: the value when none is given (a dict or list is copied for each instance).
        help: one line for ``--help`` and the docs.
        choices: the allowed values.
        low, high: inclusive bounds; ``above``, ``below``: exclusive ones (a number or a function).
        pattern: a regular expression the whole text must match; ``shown`` says it in words.
        flag: the command-line flag (default ``--field-name``); ``metavar`` its placeholder.
        cli: whether the command line has this option.
        applies: ``(attribute, values)``: the option is used only when the config's ``attribute`` is one of
            ``values`` (e.g. ``("mode", ("partial",))``); set elsewhere it is reported as ignored.
        fixed: the option defines a run (its data, its model): continuing the run may not change it.
        unset: what the default None means, for the help (e.g. "the dataset's own, else 40").
        session: the option concerns the command that runs, not the run (what it shows): continuing the run
            takes it from the new command line, not from the run's config.
    """
    meta = {"help": help, "choices": tuple(choices) if choices is not None else None, "low": low, "high": high,
            "above": above, "below": below, "pattern": pattern, "shown": shown, "flag": flag, "metavar": metavar,
            "cli": cli, "applies": applies, "fixed": fixed, "unset": unset, "session": session}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


def like(cls: type, name: str, default: Any, **changes: Any) -> Any:
    """A field declared as ``cls.name`` is (help, choices, range), with another default and any ``changes``:
    an option that means the same in two places is declared once."""
    meta = {**cls.__dataclass_fields__[name].metadata, **changes}
    return option(default, **meta)


def _value(bound: Bound) -> float | None:
    return bound() if callable(bound) else bound


def is_a(value: Any, kind: type) -> bool:
    """Whether ``value`` is of ``kind`` as options read it: a bool is no integer, an integer is a number, and a
    number is finite."""
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and _finite(value)
    return isinstance(value, kind)


def plain(name: str, kind: type) -> Spec:
    """The spec of a value that need only be of ``kind`` (no help, choices or range)."""
    return Spec(name, kind, False, {"help": "", "choices": None, "low": None, "high": None, "above": None,
                                    "below": None, "pattern": None, "shown": None, "flag": None, "metavar": None,
                                    "cli": False, "applies": None, "fixed": False})


def _finite(v: float) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an integer too large for a float
        return False


def _num(v: float) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


@dataclass(frozen=True)
class Spec:
    """What one option's value must be, read from its field."""

    name: str
    type: type
    optional: bool
    meta: dict
    item: type | None = None  # the type of a list's items (list[int] -> int)

    @property
    def help(self) -> str:
        return self.meta["help"]

    @property
    def flag(self) -> str:
        return self.meta["flag"] or "--" + self.name.replace("_", "-")

    def describe(self) -> str:
        """What a valid value is, in words: 'an integer from 1 to 100000', 'one of sgd, adam, adamw'."""
        if self.item is not None:
            one = dataclasses.replace(self, type=self.item, item=None).describe()
            return f"a comma-separated list, each {one}"
        m = self.meta
        if m["choices"] is not None:
            return "one of " + ", ".join(str(c) for c in m["choices"])
        if m["pattern"] is not None:
            return m["shown"] or f"text matching {m['pattern']}"
        if self.type is bool:
            return "true, false or null (unset)" if self.optional else "true or false"
        if self.type not in (int, float):
            return {str: "text", dict: "a mapping of key: value", list: "a list"}.get(self.type, self.type.__name__)
        what = "an integer" if self.type is int else "a number"
        low, high, above, below = (_value(m[k]) for k in ("low", "high", "above", "below"))
        if low is not None and high is not None:
            return f"{what} from {_num(low)} to {_num(high)}"
        parts = []
        if low is not None:
            parts.append(f"of at least {_num(low)}")
        if above is not None:
            parts.append(f"above {_num(above)}")
        if below is not None:
            parts.append(f"below {_num(below)}")
        if high is not None:
            parts.append(f"at most {_num(high)}")
        return what + (" " + " and ".join(parts) if parts else "")

    def problem(self, value: Any) -> str | None:
        """None if ``value`` is valid, else what is wrong with it ('must be ..., got ...')."""
        if value is None:
            return None if self.optional else f"must be {self.describe()}, got nothing"
        if self.item is not None:
            if not isinstance(value, (list, tuple)) or not value:
                return f"must be {self.describe()}, got {value!r}"
            one = dataclasses.replace(self, type=self.item, item=None)
            bad = next((v for v in value if one.problem(v)), None)
            if bad is not None:
                return f"must be {self.describe()}, got {bad!r} in {list(value)!r}"
            twice = next((v for v in value if list(value).count(v) > 1), None)
            return None if twice is None else f"names {twice!r} twice in {list(value)!r}; give each once"
        if not is_a(value, self.type):
            return f"must be {self.describe()}, got {value!r}"
        m = self.meta
        if m["choices"] is not None and value not in m["choices"]:
            return f"must be {self.describe()}, got {value!r}"
        if m["pattern"] is not None and not re.fullmatch(m["pattern"], value):
            return f"must be {self.describe()}, got {value!r}"
        if self.type in (int, float):
            low, high, above, below = (_value(m[k]) for k in ("low", "high", "above", "below"))
            if (low is not None and value < low) or (high is not None and value > high) or \
                    (above is not None and value <= above) or (below is not None and value >= below):
                return f"must be {self.describe()}, got {_num(value)}"
        return None

    def parse(self, text: str) -> Any:
        """A command-line string as this option's value, checked; ``ValueError`` says what is wrong."""
        if self.item is not None:
            items = [t.strip() for t in text.split(",")]
            if not any(items) or not all(items):
                raise ValueError(f"must be {self.describe()}, got {text!r}")
            one = dataclasses.replace(self, type=self.item, item=None)
            try:
                value: Any = [one.parse(t) for t in items]
            except ValueError:
                raise ValueError(f"must be {self.describe()}, got {text!r}") from None
        else:
            try:
                value = int(text) if self.type is int else float(text) if self.type is float else text
            except ValueError:
                raise ValueError(f"must be {self.describe()}, got {text!r}") from None
        problem = self.problem(value)
        if problem:
            raise ValueError(problem)
        return value


_SPECS: dict[type, list[Spec]] = {}


def specs(cls: type) -> list[Spec]:
    """The options of a config dataclass, in field order."""
    if cls not in _SPECS:
        hints = typing.get_type_hints(cls)
        out = []
        for f in fields(cls):
            hint = hints[f.name]
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            optional = type(None) in typing.get_args(hint)
            inner = args[0] if optional and len(args) == 1 else hint  # X | None -> X
            base = typing.get_origin(inner) or inner
            item = typing.get_args(inner)[0] if base is list and typing.get_args(inner) else None
            if not isinstance(base, type):
                raise TypeError(f"option {cls.__name__}.{f.name}: type {hint} is not supported (one type, or one "
                                f"type or None)")
            meta = dict(f.metadata) or plain(f.name, base).meta
            out.append(Spec(f.name, base, optional, meta, item))
        _SPECS[cls] = out
    return _SPECS[cls]


def spec(cls: type, name: str) -> Spec:
    return next(s for s in specs(cls) if s.name == name)


def check(obj: Any, name: Callable[[str], str] = lambda key: key) -> None:
    """Raise a one-line :class:`CnnlabError` for the first field of ``obj`` whose value is not valid;
    ``name(key)`` is how the message names it (a flag on the command line, a key in a file)."""
    for s in specs(type(obj)):
        problem = s.problem(getattr(obj, s.name))
        if problem:
            raise CnnlabError(f"{name(s.name)} {problem}")


def from_mapping(cls: type, values: dict[str, Any], source: str) -> Any:
    """An instance of ``cls`` from a mapping (a config file): unknown keys and invalid values are one line
    naming the key and ``source``."""
    known = {s.name: s for s in specs(cls)}
    unknown = sorted(set(values) - set(known), key=str)
    if unknown:
        raise CnnlabError(f"{source}: unknown option(s) {', '.join(map(str, unknown))}")
    values = {k: _number(known[k], v) for k, v in values.items()}
    for key, value in values.items():
        problem = known[key].problem(value)
        if problem:
            raise CnnlabError(f"{source}: {key} {problem}")
    return cls(**values)


def _number(spec: Spec, value: Any) -> Any:
    """A number YAML left as text (its 1.1 rules read ``1e-3`` as a string) is the number the command line
    would make of it."""
    if spec.type is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def applies(obj: Any, name: str) -> bool:
    """Whether ``obj`` uses its option ``name`` (an option declared with ``applies`` may not apply to it)."""
    relation = spec(type(obj), name).meta.get("applies")
    return not relation or getattr(obj, relation[0]) in relation[1]


def without_ignored(obj: Any) -> Any:
    """``obj`` with the options it does not use back at their defaults: what a run records is what it ran with
    (a value it ignored, saved, would be warned about again at every resume)."""
    defaults = type(obj)()
    return dataclasses.replace(obj, **{s.name: getattr(defaults, s.name) for s in specs(type(obj))
                                       if not applies(obj, s.name)})


def ignored(obj: Any) -> list[str]:
    """The options set away from their default that ``obj`` does not use (see ``applies``), each as one
    sentence: '--topk applies to --kind sparse; --kind conv ignores it'."""
    out = []
    defaults = type(obj)()
    for s in specs(type(obj)):
        if applies(obj, s.name) or getattr(obj, s.name) == getattr(defaults, s.name):
            continue
        attr, values = s.meta["applies"]
        current = getattr(obj, attr)
        allowed = " or ".join(map(str, values))
        if attr in {x.name for x in specs(type(obj))}:
            flag = spec(type(obj), attr).flag
            out.append(f"{s.flag} applies to {flag} {allowed}; {flag} {current} ignores it")
        else:  # a derived property (e.g. an autoencoder's body)
            out.append(f"{s.flag} applies when the {attr} is {allowed}; here it is {current}, which ignores it")
    return out
