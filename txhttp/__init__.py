"""
txhttp: a fast, strict HTTP/1.1 client and server for Twisted.

The public API lives in `txhttp.client`, `txhttp.server` and
`txhttp.testing`; `txhttp._wire` is the sans-IO HTTP/1.1 core both build on.
"""

__version__ = "0.1.0.dev0"
"""The version of this txhttp release, a :pep:`440` version string."""

__all__ = ["__version__"]
