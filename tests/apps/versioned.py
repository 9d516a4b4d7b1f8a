"""An app whose answers carry a version read when it is imported, for the reload tests.

``$COMPOSERV_TEST_VERSION_FILE`` names a file holding the version; the version
``broken`` makes the import fail, as a bad deploy would. `handler` answers each
line with ``VERSION PID HOST PORT``: its version, the serving process, and the
peer it sees (behind a proxy, the client).
"""

from __future__ import annotations

import os
from pathlib import Path

from composerv import Connection, stream_handler

VERSION = Path(os.environ["COMPOSERV_TEST_VERSION_FILE"]).read_text().strip()
if VERSION == "broken":
    raise RuntimeError("this version of the app does not import")


def _answer(conn: Connection) -> None:
    while conn.readline():
        host, port = conn.peer[:2]  # type: ignore[misc]  # an inet peer
        conn.send_all(f"{VERSION} {os.getpid()} {host} {port}\n".encode())


handler = stream_handler(_answer)
