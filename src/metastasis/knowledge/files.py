"""Reading a user's data file (TOML or JSON) safely, before any schema sees it.

Every file the program accepts (``--model``, ``--clinical``, ``--treatments``, ``--protocol``,
``--targets``) is read here, so one set of limits protects them all:

* a size limit, checked before the file is read, so a huge file is refused at once;
* a nesting limit, checked on the text *before* parsing: the TOML and JSON parsers recurse
  once per level of nested arrays and tables (a ``RecursionError`` deep inside the parser),
  and TOML's dotted keys (``a.b.c = 1``) cost its parser time quadratic in their length;
* the same nesting limit on the parsed data, which is what the validators, the defaults'
  merge and ``copy.deepcopy`` then recurse over.

Every failure is one :class:`~metastasis.errors.ModelError` whose field is ``model file``
(the CLI renames it after the option that named the file) and whose value is the path.
"""

from __future__ import annotations

import contextlib
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from metastasis.errors import ModelError

MAX_FILE_BYTES = 4 * 1024 * 1024
"""Largest data file accepted: 4 MiB, about a hundred times the largest shipped file
(treatments.toml, 43 kB), so that parsing and validating any accepted file takes seconds."""

MAX_DEPTH = 32
"""Deepest nesting of tables, arrays and dotted-key parts accepted.  The shipped files nest at
most 6 deep (``protocols.<name>.steps.<i>.start_day.value``); 32 leaves room for any layout
while staying far below Python's recursion limit (about 1000 frames), which the parsers and
validators would otherwise reach."""

FILE_FIELD = "model file"
"""Field named by file-level errors (the CLI names the option instead, e.g. ``--clinical``)."""

_SEGMENT = r"""(?:[A-Za-z0-9_+-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')"""
_TOKENS = re.compile(
    rf"""
    (?P<string>\"\"\"[\s\S]*?\"\"\"(?!")|'''[\s\S]*?'''(?!')|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')
    |(?P<comment>\#[^\n]*)
    |(?P<open>[\[{{])
    |(?P<close>[\]}}])
    |(?P<dots>(?:\.[ \t]*{_SEGMENT}[ \t]*)+)
    """,
    re.VERBOSE,
)
"""What matters for nesting in TOML or JSON text: strings and comments (skipped, so brackets
and dots inside them do not count), opening and closing brackets, and runs of dotted-key
parts.  A float's decimal point reads as a run of one, far below any limit.  Every
alternative starts at a character it needs (a quote, a bracket, a dot), so the scan stays
linear in the length of the text whatever it holds."""


def _refuse(path: Path, allowed: str) -> ModelError:
    return ModelError(FILE_FIELD, str(path), allowed)


def _text_depth(text: str) -> tuple[int, int]:
    """Deepest bracket nesting and longest dotted key of TOML or JSON text, read without
    parsing (an upper bound on what a parser would recurse through)."""
    depth = deepest = longest = 0
    for token in _TOKENS.finditer(text):
        kind = token.lastgroup
        if kind == "open":
            depth += 1
            deepest = max(deepest, depth)
        elif kind == "close":
            depth = max(depth - 1, 0)
        elif kind == "dots":
            longest = max(longest, token.group().count(".") + 1)
    return deepest, longest


def _data_depth(data: object) -> int:
    """Nesting depth of parsed data, measured without recursion (the data may be deeper than
    Python's recursion limit allows a recursive walk to go)."""
    deepest = 0
    stack: list[tuple[object, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: list[object] = list(node.values())
        elif isinstance(node, list):
            children = list(node)
        else:
            continue
        deepest = max(deepest, depth + 1)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, refusing one over :data:`MAX_FILE_BYTES` before reading it whole."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _refuse(path, f"a readable file ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise _refuse(path, f"a file of at most {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    return data


def parse_text(text: str, *, json_format: bool, path: Path) -> dict[str, Any]:
    """Parse TOML (or JSON) text after checking its nesting, then check the parsed data."""
    too_deep = f"at most {MAX_DEPTH} levels of nested tables, arrays and dotted keys"
    deepest, longest = _text_depth(text)
    if deepest > MAX_DEPTH or longest > MAX_DEPTH:
        raise _refuse(path, too_deep)
    try:
        data = json.loads(text) if json_format else tomllib.loads(text)
    except RecursionError:  # a nesting the text scan did not see (it is conservative)
        raise _refuse(path, too_deep) from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise _refuse(path, f"valid {'JSON' if json_format else 'TOML'} ({exc})") from None
    if _data_depth(data) > MAX_DEPTH:
        raise _refuse(path, too_deep)
    if not isinstance(data, dict):
        raise _refuse(path, "a table (mapping) at the top level")
    return data


def read_data(path: str | Path) -> dict[str, Any]:
    """Read a TOML file (JSON if its name ends in ``.json``) within the limits above."""
    path = Path(path)
    raw = _read_bytes(path)
    json_format = path.suffix.lower() == ".json"
    # TOML is UTF-8; JSON may be UTF-8, -16 or -32, as json.loads(bytes) accepts
    encoding = json.detect_encoding(raw) if json_format else "utf-8"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise _refuse(path, f"valid TOML or JSON text ({exc})") from None
    return parse_text(text, json_format=json_format, path=path)


@contextlib.contextmanager
def errors_named(path: str | Path | None) -> Iterator[None]:
    """Name ``path`` in every error about its content raised inside (a file-level error
    already names the file as its value; ``None``, a packaged file, names nothing)."""
    try:
        yield
    except ModelError as error:
        if path is None or error.field == FILE_FIELD:
            raise
        raise error.in_file(str(path)) from None
