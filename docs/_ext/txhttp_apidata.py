"""
A ``txhttp-data`` directive: a re-exported constant with its own docstring.

``automodule`` documents the classes and functions a public module re-exports,
but not its constants and type aliases: their docstrings (the string right
after the assignment) sit in the private module that assigns them, where
autodoc does not look. So the API page writes::

    .. py:currentmodule:: txhttp.client

    .. txhttp-data:: DEFAULT_CONNECT_TIMEOUT

and this directive finds the assignment by following ``from X import NAME``
from the current module down to the module that assigns it, and writes a
``py:data`` entry with that docstring (and the value, for numbers, text and
``None``; ``:no-value:`` hides it). The text lives once, in the source. A name
without a docstring is a build warning, so ``sphinx-build -W`` fails on it.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import itertools
from typing import Any, ClassVar

from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.parsing import nested_parse_to_nodes

_log = logging.getLogger(__name__)

_MAX_REEXPORT_HOPS = 5
"""How many ``from X import NAME`` steps are followed to find an assignment."""


def attribute_docstrings(source: str) -> dict[str, str]:
    """Docstrings of module-level assignments (a string right after them)."""
    found: dict[str, str] = {}
    for node, after in itertools.pairwise(ast.parse(source).body):
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        else:
            continue
        if not (
            isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                found[target.id] = inspect.cleandoc(after.value.value)
    return found


def source_docstring(module_name: str, name: str) -> str | None:
    """
    The docstring written for ``name`` where it is assigned, following
    ``from X import name`` re-exports from ``module_name``.
    """
    for _ in range(_MAX_REEXPORT_HOPS + 1):
        source = inspect.getsource(importlib.import_module(module_name))
        own = attribute_docstrings(source).get(name)
        if own is not None:
            return own
        origin = None
        for node in ast.parse(source).body:
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    if (alias.asname or alias.name) == name:
                        origin, name = node.module, alias.name
        if origin is None:
            return None
        module_name = origin
    return None


def _shows_value(value: object) -> bool:
    """Whether ``value`` is worth printing (a number, text or None)."""
    return value is None or isinstance(value, (bool, int, float, str, bytes))


class TxhttpData(SphinxDirective):
    """``.. txhttp-data:: NAME``: a constant of the current module."""

    required_arguments = 1
    has_content = False
    option_spec: ClassVar[dict[str, Any]] = {"no-value": directives.flag}

    def run(self) -> list[Any]:
        """Write the ``py:data`` entry and parse it in place."""
        name = self.arguments[0]
        module_name = self.env.ref_context.get("py:module")
        if not module_name:
            self.warn_missing(f"txhttp-data {name}: no current module")
            return []
        docstring = source_docstring(module_name, name)
        if docstring is None:
            self.warn_missing(f"{module_name}.{name} has no docstring")
            return []
        lines = [f".. py:data:: {name}"]
        value = getattr(importlib.import_module(module_name), name)
        if "no-value" not in self.options and _shows_value(value):
            lines.append(f"   :value: {value!r}")
        lines.append("")
        lines.extend(f"   {line}" if line else "" for line in docstring.splitlines())
        source, _ = self.get_source_info()
        return list(nested_parse_to_nodes(self.state, StringList(lines, source=source)))

    def warn_missing(self, message: str) -> None:
        """Report a name this directive cannot document (fails ``-W``)."""
        _log.warning(message, location=self.get_location())


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directive."""
    app.add_directive("txhttp-data", TxhttpData)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
