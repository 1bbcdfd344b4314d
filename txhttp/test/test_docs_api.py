# -*- test-case-name: txhttp.test.test_docs_api -*-
"""
The API page, ``docs/api.rst``, documents every public name.

Sphinx's ``automodule`` documents the classes and functions a public module
re-exports in its ``__all__``, but not its constants and type aliases: their
docstrings sit in the private module that assigns them, where autodoc does
not look. The API page lists those with ``txhttp-data`` entries (the local
extension ``docs/_ext/txhttp_apidata.py`` writes each from the docstring in
the source, so the text lives once). These tests fail when a name of a
public ``__all__`` is on neither list, or when an entry names something that
is not public or has no docstring to show.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Final

from twisted.trial.unittest import SkipTest, SynchronousTestCase

import txhttp

PUBLIC_MODULES: Final = ("txhttp", "txhttp.client", "txhttp.server", "txhttp.testing")
"""The modules whose ``__all__`` is the public API."""

API_PAGE: Final = Path(txhttp.__file__).resolve().parent.parent / "docs" / "api.rst"

_DIRECTIVE: Final = re.compile(r"^\.\. (?P<kind>[\w:-]+)::\s*(?P<arg>.*?)\s*$")
_OPTION: Final = re.compile(r"^:(?P<name>[\w-]+):\s*(?P<value>.*?)\s*$")


@dataclass
class DataEntry:
    """One ``py:data`` (or ``autodata``) entry of the API page."""

    module: str
    name: str
    line: int
    options: dict[str, str] = field(default_factory=dict)
    body: list[str] = field(default_factory=list)

    @property
    def description(self) -> str:
        """The entry's text, white space folded."""
        return fold(" ".join(self.body))


@dataclass
class ApiPage:
    """What an API page documents."""

    automodules: set[str] = field(default_factory=set)
    data: dict[tuple[str, str], DataEntry] = field(default_factory=dict)


def fold(text: str) -> str:
    """``text`` with every run of white space made one space."""
    return " ".join(text.split())


def parse_api_page(text: str) -> ApiPage:
    """
    The ``automodule`` directives and the data entries of ``text``.

    Data entries are ``.. py:data:: NAME`` (in the module set by
    ``py:module`` / ``py:currentmodule`` / ``automodule``, or by a
    ``:module:`` option) and ``.. autodata:: MODULE.NAME``.
    """
    page = ApiPage()
    module = ""
    entry: DataEntry | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        directive = _DIRECTIVE.match(line)
        if directive is not None:
            entry = None
            kind, arg = directive["kind"], directive["arg"]
            if kind in ("py:module", "py:currentmodule", "currentmodule", "module"):
                module = arg
            elif kind == "automodule":
                module = arg
                page.automodules.add(arg)
            elif kind in ("py:data", "data", "txhttp-data"):
                entry = DataEntry(module, arg, number)
            elif kind == "autodata":
                owner, _, name = arg.rpartition(".")
                entry = DataEntry(owner, name, number)
            if entry is not None:
                page.data.setdefault((entry.module, entry.name), entry)
            continue
        if entry is None or not line.strip():
            continue
        if not line.startswith((" ", "\t")):
            entry = None
            continue
        option = _OPTION.match(line.strip())
        if option is not None and not entry.body:
            if option["name"] == "module":
                del page.data[entry.module, entry.name]
                entry.module = option["value"]
                page.data.setdefault((entry.module, entry.name), entry)
            else:
                entry.options[option["name"]] = option["value"]
        else:
            entry.body.append(line.strip())
    return page


def load_extension() -> ModuleType:
    """
    The ``txhttp-data`` extension (``docs/_ext/txhttp_apidata.py``), whose
    docstring lookup these tests share.
    """
    try:
        import sphinx  # noqa: F401
    except ImportError:
        raise SkipTest("Sphinx is not installed (the docs extra)") from None
    path = API_PAGE.parent / "_ext" / "txhttp_apidata.py"
    spec = importlib.util.spec_from_file_location("txhttp_apidata", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def autodoc_documents(module: ModuleType, name: str) -> bool:
    """
    Whether ``automodule`` with ``members`` shows ``name`` of ``module``.

    It shows classes and functions that have a docstring of their own, and
    data whose docstring is in ``module``'s own source.
    """
    value = getattr(module, name)
    if inspect.isclass(value) or inspect.isroutine(value):
        return bool(getattr(value, "__doc__", None))
    docstrings = load_extension().attribute_docstrings(inspect.getsource(module))
    return name in docstrings


class ParseApiPageTests(SynchronousTestCase):
    """`parse_api_page` finds what a page documents."""

    def test_entries_and_modules(self) -> None:
        """Modules, data entries, their options and descriptions are found."""
        page = parse_api_page(
            ".. automodule:: pkg.a\n"
            "\n"
            ".. py:currentmodule:: pkg.b\n"
            "\n"
            ".. py:data:: LIMIT\n"
            "   :value: 3\n"
            "\n"
            "   The limit,\n"
            "   in bytes.\n"
            "\n"
            "Text after it.\n"
            "\n"
            ".. py:data:: OTHER\n"
            "   :module: pkg.c\n"
            "\n"
            ".. autodata:: pkg.d.ALIAS\n"
        )
        self.assertEqual({"pkg.a"}, page.automodules)
        self.assertEqual(
            {("pkg.b", "LIMIT"), ("pkg.c", "OTHER"), ("pkg.d", "ALIAS")},
            set(page.data),
        )
        limit = page.data["pkg.b", "LIMIT"]
        self.assertEqual({"value": "3"}, limit.options)
        self.assertEqual("The limit, in bytes.", limit.description)
        self.assertEqual("", page.data["pkg.c", "OTHER"].description)

    def test_attribute_docstrings(self) -> None:
        """Only assignments followed by a string have a docstring."""
        source = 'A = 1\n"""About A."""\nB: int = 2\n"""About B."""\nC = 3\nx()\n'
        self.assertEqual(
            {"A": "About A.", "B": "About B."},
            load_extension().attribute_docstrings(source),
        )

    def test_reexports_followed(self) -> None:
        """A re-exported constant's docstring is found where it is assigned."""
        found = load_extension().source_docstring(
            "txhttp.client", "DEFAULT_CONNECT_TIMEOUT"
        )
        self.assertIsNotNone(found)
        self.assertIn("Seconds", str(found))


class ApiPageTests(SynchronousTestCase):
    """Every name of a public ``__all__`` is on the API page, described."""

    def setUp(self) -> None:
        if not API_PAGE.exists():
            raise SkipTest(f"{API_PAGE} is not here (installed without docs)")
        self.page = parse_api_page(API_PAGE.read_text(encoding="utf-8"))

    def test_every_public_name_documented(self) -> None:
        """Each name is shown by ``automodule`` or has a ``py:data`` entry."""
        missing = []
        for module_name in PUBLIC_MODULES:
            module = importlib.import_module(module_name)
            for name in module.__all__:
                if (module_name, name) in self.page.data:
                    continue
                if module_name in self.page.automodules and autodoc_documents(
                    module, name
                ):
                    continue
                missing.append(f"{module_name}.{name}")
        self.assertEqual(
            [],
            missing,
            "not on docs/api.rst: add a '.. txhttp-data:: NAME' entry and a "
            "docstring where NAME is assigned (autodoc skips re-exported data)",
        )

    def test_entries_are_public_and_described(self) -> None:
        """Each data entry names a public name with a docstring in the source."""
        extension = load_extension()
        self.assertTrue(self.page.data)
        for (module_name, name), entry in self.page.data.items():
            where = f"docs/api.rst:{entry.line}: {module_name}.{name}"
            self.assertIn(module_name, PUBLIC_MODULES, where)
            module = importlib.import_module(module_name)
            self.assertIn(name, module.__all__, where)
            self.assertTrue(
                entry.description or extension.source_docstring(module_name, name),
                f"{where} has no docstring where it is assigned",
            )
