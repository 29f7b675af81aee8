"""Log output: plain text lines, or one JSON object per line (``runtime.log_format``).

A JSON line always has ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``. The
line the dispatcher writes for each answered request adds ``request_id`` (the vCD message's
``id``, which the reply carries too), ``vcd_request_id`` (vCD's ``X-VMWARE-VCLOUD-REQUEST-ID``
header when the forwarded request has one; the reply echoes it), ``service``, ``operation``,
``method``, ``path``, ``status``, ``duration_ms``, ``user`` and ``org`` (URNs). Lines a handler
logs while it runs carry the request's ids, service and operation too. Never a header, a body
or a secret: only what is listed here, and the message text.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import IO, Any

from .context import _current
from .vcloud.media import H_REQUEST_ID

#: The ``extra`` key under which the dispatcher hands a request's fields to the formatter.
REQUEST_FIELDS = "vcdext_request"
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s%(vcdext_ids)s"


def _request_ids(record: logging.LogRecord) -> tuple[str, str] | None:
    """(request id, vCD request id) of the request ``record`` was logged for, if any."""
    fields = getattr(record, REQUEST_FIELDS, None)
    if isinstance(fields, dict):
        return str(fields.get("request_id", "")), str(fields.get("vcd_request_id", ""))
    context = _current.get(None)
    if context is None:
        return None
    return context.request.id, context.request.headers.get(H_REQUEST_ID, "")


class TextFormatter(logging.Formatter):
    """The plain line; a line logged for a request ends with its ids: ``[request r-1, vCD
    <id>]`` (the request line itself, which starts with the request id, only with vCD's)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)
        self._cached = (-1, "")  # (second, its date and time), replaced as one

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """logging's default time (``2026-12-01 11:03:21,042``), the date and time part made
        once a second instead of once a line."""
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second, stamp = self._cached
        if int(record.created) != second:
            second = int(record.created)
            stamp = time.strftime(self.default_time_format, self.converter(record.created))
            self._cached = (second, stamp)
        return (self.default_msec_format or "%s,%03d") % (stamp, record.msecs)

    def format(self, record: logging.LogRecord) -> str:
        ids = _request_ids(record)
        parts = []
        if ids is not None:
            if not isinstance(getattr(record, REQUEST_FIELDS, None), dict) and ids[0]:
                parts.append(f"request {ids[0]}")
            if ids[1]:
                parts.append(f"vCD {ids[1]}")
        record.vcdext_ids = f" [{', '.join(parts)}]" if parts else ""
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, REQUEST_FIELDS, None)
        if isinstance(fields, dict):
            doc.update(fields)
        else:
            context = _current.get(None)
            if context is not None:  # a line logged by a handler, or by code it calls
                request = context.request
                doc["request_id"] = request.id
                doc["vcd_request_id"] = request.headers.get(H_REQUEST_ID, "")
                doc["service"] = context.plugin
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for ``runtime.log_format`` (``"text"`` or ``"json"``)."""
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(level: str, log_format: str = "text", stream: IO[str] | None = None) -> None:
    """Send the process's logs to ``stream`` (default stderr) at ``level`` in ``log_format``.

    Like :func:`logging.basicConfig`, does nothing when the root logger has handlers already.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(log_format))
    logging.basicConfig(level=level, handlers=[handler])
