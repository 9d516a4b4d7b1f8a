"""Apps the command-line tests run with ``python -m composerv run tests.apps.NAME:ATTR``."""
