"""
In-process tests: a ``Clock`` or ``MemoryReactorClock``, ``StringTransport``,
``StubTreq``; no child process and no TCP listener. (A socketpair or an
AF_UNIX datagram socket the test itself binds in ``tmp_path`` counts as
in-process.) Subfolders mirror the ``hoodypipe`` package; ``kit/`` tests the
test kits of ``tests/kit``. Run them alone with ``pytest tests/unit``.
"""
