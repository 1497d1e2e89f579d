"""Structured logs: structlog configured once, JSON lines rendered with orjson.

Events are snake_case past tense (``order_rejected``, ``session_logged_on``) with their context
bound as fields (session, cl_ord_id, symbol, reason). Per-order lines are DEBUG; session events,
state changes, admin actions and errors are INFO and above. Every line carries its time (ISO 8601,
UTC), level, logger name and process id.

A line may go to two places at once, each with its own renderer and lowest level: the log file
(JSON lines, for machines) and standard error (console text when it is a terminal, for people).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, TextIO

import orjson
import structlog

LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}
_LEVEL_OF_METHOD = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "warn": logging.WARNING,
                    "error": logging.ERROR, "exception": logging.ERROR, "critical": logging.CRITICAL,
                    "fatal": logging.CRITICAL, "msg": logging.INFO}


def _orjson_dumps(event: dict, default=None) -> str:
    return orjson.dumps(event, default=default or str).decode()


def renderer(format: str) -> Callable[[Any, str, dict], str]:
    """Return structlog's renderer for "json" (orjson lines) or "console" (text for a person)."""
    if format == "json":
        return structlog.processors.JSONRenderer(serializer=_orjson_dumps)
    return structlog.dev.ConsoleRenderer(colors=False)


@dataclass
class Output:
    """One destination of log lines: a stream, how lines are rendered for it, its lowest level."""

    stream: TextIO
    format: str
    level: int
    render: Callable[[Any, str, dict], str] = field(init=False)
    lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.render = renderer(self.format)

    def write(self, method: str, event: dict) -> None:
        if _LEVEL_OF_METHOD.get(method, logging.INFO) < self.level:
            return
        line = self.render(None, method, dict(event))       # renderers may take keys out of the dict
        with self.lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (OSError, ValueError):
                pass                                          # a closed or full stream must not stop the caller


class LineLogger:
    """The logger at the end of structlog's chain: hands each event to every output."""

    def __init__(self, name: str, outputs: list[Output]) -> None:
        self.name = name
        self.outputs = outputs

    def _write(self, method: str) -> Callable[..., None]:
        def write(**event: Any) -> None:
            for output in self.outputs:
                output.write(method, event)
        return write

    def __getattr__(self, method: str) -> Callable[..., None]:
        if method not in _LEVEL_OF_METHOD:
            raise AttributeError(method)
        return self._write(method)


class LineLoggerFactory:
    def __init__(self, outputs: list[Output]) -> None:
        self.outputs = outputs

    def __call__(self, *args: Any) -> LineLogger:
        return LineLogger(str(args[0]) if args else "fixgate", self.outputs)


def _add_logger_name_and_pid(logger: Any, method: str, event: dict) -> dict:
    event.setdefault("logger", getattr(logger, "name", "fixgate"))
    event.setdefault("pid", os.getpid())
    return event


def _pass_on(logger: Any, method: str, event: dict) -> dict:
    return event                                              # LineLogger renders for each output


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def configure(level: str = "INFO", format: str = "json", stream: TextIO | None = None,
              file: str = "", console_level: str | None = None) -> list[Output]:
    """Configure structlog for the process; return the outputs.

    Without `file`, lines at `level` and above go to `stream` (standard error) in `format`. With
    `file`, they go to that file as `format` (JSON lines by default), and lines at `console_level`
    and above (WARNING unless given) also go to the stream: as console text when it is a terminal,
    JSON lines otherwise.
    """
    output: TextIO = stream or sys.stderr
    outputs: list[Output] = []
    if file:
        outputs.append(Output(open(file, "a", encoding="utf-8", buffering=1),  # noqa: SIM115 - process-long
                              format, LEVELS[level]))
        console = LEVELS[console_level or "WARNING"]
        outputs.append(Output(output, "console" if is_terminal(output) else "json", console))
    else:
        outputs.append(Output(output, format, LEVELS[level]))
    lowest = min(item.level for item in outputs)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _add_logger_name_and_pid,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            _pass_on,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lowest),
        logger_factory=LineLoggerFactory(outputs),
        cache_logger_on_first_use=True,
    )
    return outputs
