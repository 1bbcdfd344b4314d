# -*- test-case-name: txhttp.test.test_wire_imports -*-
"""The wire core imports only the standard library and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

import txhttp._wire

WIRE = Path(txhttp._wire.__file__).parent


def imported_modules(source: str) -> list[str]:
    """Top-level names of every module ``source`` imports (relative: ``.``)."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append("." if node.level else node.module or "")
    return names


class ImportTests(SynchronousTestCase):
    """Sans-IO: nothing but the stdlib and txhttp._wire."""

    def test_only_stdlib_and_wire(self) -> None:
        """Every module of txhttp._wire imports only stdlib or txhttp._wire."""
        modules = sorted(WIRE.glob("*.py"))
        self.assertGreater(len(modules), 5)
        for path in modules:
            for name in imported_modules(path.read_text()):
                allowed = (
                    name in {".", "txhttp._wire"}
                    or name.startswith("txhttp._wire.")
                    or name.split(".")[0] in sys.stdlib_module_names
                )
                self.assertTrue(allowed, f"{path.name} imports {name}")

    def test_detects_foreign_import(self) -> None:
        """The check sees imports of Twisted, however written."""
        self.assertEqual(
            ["twisted.internet", "twisted", "."],
            imported_modules(
                "import twisted.internet\nfrom twisted import x\nfrom . import y\n"
            ),
        )
