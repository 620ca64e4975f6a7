"""structlog JSON logs: timestamp, level, logger, message, and the request/run ids in context."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

from agent_service.core.request_id import add_request_id


def configure_logging(level: str = "INFO", *, stream: TextIO = sys.stdout,
                      console: bool = False) -> None:
    """Every logger of the process (uvicorn's, SAQ's, the SDKs') through one formatter: JSON
    lines, or coloured console lines when `console` (LOG_FORMAT=console) asks for them."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        add_request_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        # Filtering first: a disabled level costs no timestamp or context merge (the access
        # log is called on every request).
        processors=[structlog.stdlib.filter_by_level, *shared,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.EventRenamer("message"),
            *([structlog.dev.ConsoleRenderer(event_key="message")] if console else
              [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]),
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's loggers keep handlers of their own unless told to hand lines to the root's.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Access logs come from our own middleware, with route templates and request ids.
    logging.getLogger("uvicorn.access").disabled = True
