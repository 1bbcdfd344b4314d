"""
The ``twistd txhttp`` plugin: a thin pointer to `txhttp._tap`.

Twisted scans ``twisted/plugins`` for this module, so it must import fast and
never fail: everything else (options, the service) lives in txhttp._tap and is
imported only when the plugin is used. This directory has no ``__init__.py``
on purpose (it is Twisted's plugin namespace).
"""

from twisted.application.service import ServiceMaker

txhttp = ServiceMaker(  # type: ignore[no-untyped-call]  # Twisted leaves it unannotated
    "txhttp",
    "txhttp._tap",
    "A fast, strict HTTP/1.1 server: static files, a twisted.web resource, "
    "a WSGI app or an echo mode, on txhttp's channel.",
    "txhttp",
)
