"""Sphinx configuration for txhttp's documentation (built with -W -n in CI)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))
sys.path.insert(0, os.path.abspath("_ext"))

project = "txhttp"
author = "the txhttp developers"
copyright = "2026, the txhttp developers"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "txhttp_apidata",
]

default_role = "py:obj"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
autodoc_typehints = "none"
autodoc_member_order = "bysource"
# Sphinx treats any value given for a flag option as "set", so the former
# ``"show-inheritance": False`` turned base classes ON; they are useful (the
# exception trees), so say so plainly.
autodoc_default_options = {"members": True, "show-inheritance": True}
exclude_patterns = ["_build"]
html_theme = "alabaster"

# There is no network in CI, so no intersphinx: names from the standard
# library, Twisted, zope and the other libraries we build on cannot be linked
# and are not reported as broken references.
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(twisted|zope|OpenSSL|service_identity|treq|hypothesis|"
        r"cryptography|opentelemetry|collections|typing|enum|dataclasses|"
        r"asyncio|json|http|email|urllib)\b.*",
    ),
    (
        r"py:.*",
        r"(bytes|str|int|float|bool|None|object|list|dict|tuple|set|"
        r"frozenset|type|Exception|ValueError|TypeError|RuntimeError|"
        r"KeyError|OSError|BaseException|Callable|Iterable|Iterator|"
        r"Sequence|Mapping|Awaitable|Coroutine|Generator|AsyncIterator|"
        r"T|R|TypeAlias|Final|Literal|Any|Protocol|Enum|IntEnum)",
    ),
    # Type variables shown as generic bases (``FilterEvent[ReqT, RespT]``) are
    # not documented objects.
    (r"py:.*", r"txhttp\.client\._events\.(ReqT|RespT)"),
    # napoleon renders a zope interface annotation (``IBodyProducer | None``)
    # by its repr, ``<InterfaceClass twisted.web.iweb.IBodyProducer>``.
    (r"py:.*", r"<InterfaceClass (twisted|zope)\..*>"),
]
