"""Structured logs: structlog configured once, JSON lines rendered with orjson.

Events are snake_case past tense (``order_rejected``, ``session_logged_on``) with their context
bound as fields (session, cl_ord_id, symbol, reason). Per-order lines are DEBUG; session events,
state changes, admin actions and errors are INFO and above.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import orjson
import structlog

LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}


def _orjson_dumps(event: dict, default=None) -> str:
    return orjson.dumps(event, default=default or str).decode()


def configure(level: str = "INFO", format: str = "json", stream: TextIO | None = None,
              file: str = "") -> None:
    """Configure structlog for the process: filtering by `level`, JSON lines or console text."""
    output: TextIO = stream or sys.stderr
    if file:
        output = open(file, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives as long as the process
    renderer = (structlog.processors.JSONRenderer(serializer=_orjson_dumps) if format == "json"
                else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(output),
        cache_logger_on_first_use=True,
    )
