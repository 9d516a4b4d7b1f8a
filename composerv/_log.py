"""The loggers composerv writes to; configure them with the `logging` module."""

from __future__ import annotations

import logging

logger = logging.getLogger("composerv")
