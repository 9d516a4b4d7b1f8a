"""``composerv migrate``: moving legacy socketserver code onto composerv's compat package.

`_rewrite` rewrites the imports at the token level (so Python 2 sources work
too) and proves that nothing else changed; `_report` suggests, for each classic
server and handler, the same service on the core API; `_command` is the command
line.
"""

from ._command import add_migrate_command, migrate

__all__ = ["add_migrate_command", "migrate"]
