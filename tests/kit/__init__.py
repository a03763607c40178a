"""
Test kits: fixtures' building blocks, helpers and fake servers, imported by the
tests that use them (pytest collects nothing here: no module is named
``test_*``). Shared fixtures built on them are in ``tests/conftest.py``; the
kits' own tests are in ``tests/unit/kit`` and ``tests/live/kit``.

- ``service``: run the real ``twistd hoodypipe`` (``running_service``, ``REPO``).
- ``clients``: curl senders and receivers (``Clients``, ``nothing_registered``).
- ``ops``: curl parties and a ``?progress`` spectator for the operations tests.
- ``transfers``: whole transfers (``send_file``, ``send_then_vanish``, ``Paced``).
- ``waiting``: ``wait_for`` (blocking) and ``eventually`` (on the reactor).
- ``browser``: headless chromium (``launched_chromium``, ``Watched``).
- ``notify``: a recording hook receiver, in memory or on loopback.
- ``watchfeed``: a stand-in ``?progress`` feed for the watch client.
- ``spectators``: the spectator observer and resource behind an in-memory Site,
  a fake registry, and helpers of the spectator tests.
- ``observers``: a recording ``ITransferObserver``.
- ``registry``: fake parties and byte path, and a ``World``: a registry on a Clock.
"""
