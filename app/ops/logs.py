"""Logging: one configuration for every process, request ids, and no secret in any line.

``REFUNDWATCH_LOG_FORMAT=json`` writes one JSON object per line (``ts``,
``level``, ``logger``, ``message``, ``request_id`` and the record's extra
fields); the default is one readable line per record. The same dictConfig is
applied by ``app.asgi`` (so each uvicorn worker process has it, however it was
started), handed to uvicorn by ``refundwatch serve`` (so uvicorn's own lines
look the same), and applied by ``refundwatch worker`` and the other commands.

The request id lives in a context variable: set by the request middleware
(:mod:`app.ops.requests`), bound by group commit to the requests whose events
a transaction carries, and remembered per alert so the relay's line about a
delivery names the request that raised its alert (when this process ingested it).

:class:`SecretMask` sits on every handler: whatever a message, an argument, an
extra field or a traceback holds, API keys, bearer tokens, webhook secrets,
robot URL tokens (``access_token=``, ``key=``, Feishu's hook path), ``sign=``
and database passwords leave as ``***``.
"""

from __future__ import annotations

import logging
import logging.config
import re
from collections import OrderedDict
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

from app.config import Settings

REQUEST_ID: ContextVar[str | None] = ContextVar("refundwatch_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request (or requests) this code runs for, if any."""
    return REQUEST_ID.get()


def bind_request_ids(ids: Iterable[str | None]) -> None:
    """Say, in the current context, which requests the work that follows serves.

    Group commit runs one transaction for several requests in its own task: each
    transaction binds the ids of the requests it carries (comma-separated).
    """
    known = [i for i in dict.fromkeys(ids) if i]
    REQUEST_ID.set(",".join(known) if known else None)


class _Origins:
    """Which request raised which alert, for the last few thousand alerts of this process."""

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._by_alert: OrderedDict[str, str] = OrderedDict()

    def remember(self, alert_id: str, request_id: str) -> None:
        self._by_alert[alert_id] = request_id
        if len(self._by_alert) > self._size:
            self._by_alert.popitem(last=False)

    def of(self, alert_ids: Iterable[str | None]) -> str | None:
        found = [self._by_alert.get(a) for a in alert_ids if a]
        known = [r for r in dict.fromkeys(found) if r]
        return ",".join(known) if known else None


ALERT_ORIGINS = _Origins()


# --- masking -----------------------------------------------------------------

_SECRET_NAMES = (
    r"access_token|client_secret|app_secret|secret|password|passwd|api_key|apikey|token|sign|key"
)
_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization: Bearer …  /  'authorization': 'Basic …'
    (
        re.compile(
            r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)"
            r"(?:(bearer|basic|token)\s+)?[^\s\"',;}\]]+"
        ),
        r"\1\2 ***",
    ),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{4,}"), r"\1 ***"),
    # Our API keys, Standard Webhooks secrets, DingTalk signing secrets, Fernet tokens.
    (re.compile(r"\brw_[A-Za-z0-9_-]{4,}"), "rw_***"),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=]+"), "whsec_***"),
    (re.compile(r"\bSEC[0-9a-fA-F]{16,}"), "SEC***"),
    (re.compile(r"\bgAAAAA[A-Za-z0-9_=-]{16,}"), "gAAAAA***"),
    # Query parameters: ?access_token=… &key=… &sign=… &client_secret=…
    (
        re.compile(rf"(?i)(?<![A-Za-z0-9_])((?:{_SECRET_NAMES})=)[^&\s\"'#<>,;]+"),
        r"\1***",
    ),
    # JSON or repr pairs: "secret": "…", 'access_token': '…'
    (
        re.compile(rf"(?i)([\"'](?:{_SECRET_NAMES}|previous_secret)[\"']\s*:\s*[\"'])[^\"']*"),
        r"\1***",
    ),
    # Feishu / Lark robots carry their token in the path.
    (re.compile(r"(?i)(/open-apis/bot/v2/hook/)[A-Za-z0-9_-]+"), r"\1***"),
    # user:password@ in URLs (database URLs, proxies).
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]*):[^@\s/]+@"), r"\1:***@"),
)


# Something every pattern above needs: most lines (a request's) have none, and one
# search is a fraction of the ten substitutions.
_MAYBE_SECRET = re.compile(
    r"(?i:bearer|authorization)|rw_|whsec_|SEC[0-9a-fA-F]|gAAAAA|=|[\"']|/hook/|://"
)


def mask_secrets(text: str) -> str:
    """``text`` with every key, token, secret and password it holds replaced by ``***``."""
    if _MAYBE_SECRET.search(text) is None:
        return text
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return text


# Attributes every LogRecord has: anything else on a record is an extra field.
_RECORD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "color_message"}  # uvicorn's colourised copy of the message
)


class SecretMask(logging.Filter):
    """Rewrites a record so that no handler can write a secret (see :func:`mask_secrets`).

    The message is rendered once (``msg % args``) and masked; the traceback is
    rendered here and masked too, and so is every string extra field.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it; keep the raw text
            message = str(record.msg)
        record.msg = mask_secrets(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        # The traceback is kept as masked text only: a formatter must not render it again.
        record.exc_info = None
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info)
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES and isinstance(value, str):
                setattr(record, name, mask_secrets(value))
        return True


# --- formats -----------------------------------------------------------------


def _request_id(record: logging.LogRecord) -> str | None:
    explicit = getattr(record, "request_id", None)
    return explicit if explicit is not None else REQUEST_ID.get()


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = _request_id(record)
        if request_id is not None:
            line["request_id"] = request_id
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES and name != "request_id":
                line[name] = value
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """``2026-11-26 12:00:00,123 INFO refundwatch.http [req-id] message key=value …``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = " ".join(
            f"{name}={value}"
            for name, value in vars(record).items()
            if name not in _RECORD_ATTRIBUTES and name != "request_id"
        )
        request_id = _request_id(record)
        head, sep, tail = text.partition("\n")  # keep a traceback below the line
        if request_id is not None:
            head = f"{head} request_id={request_id}"
        if extras:
            head = f"{head} {extras}"
        return head + sep + tail


def logging_config(settings: Settings) -> dict[str, Any]:
    """The dictConfig of every process (uvicorn takes it as ``log_config``)."""
    level = settings.log_level.upper()
    formatter = "json" if settings.log_format == "json" else "text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"mask": {"()": SecretMask}},
        "formatters": {
            "json": {"()": JsonFormatter},
            "text": {"()": TextFormatter},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "filters": ["mask"],
                "formatter": formatter,
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            # uvicorn's loggers write through ours; its access log is replaced by
            # refundwatch.http's request lines (method, path, status, duration, id).
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            # APScheduler says "Running job …" every round: noise at info.
            "apscheduler": {"level": max(level, "WARNING", key=_level_number)},
            # What the commands tell the operator (JSON mode): shown at any log level.
            "refundwatch.cli": {"level": "INFO"},
        },
    }


def _level_number(name: str) -> int:
    number = logging.getLevelName(name)
    return number if isinstance(number, int) else logging.INFO


def configure_logging(settings: Settings) -> None:
    """Apply :func:`logging_config` to this process."""
    logging.config.dictConfig(logging_config(settings))
    logging.captureWarnings(True)
    # No format shows them, and looking them up is a third of making a record
    # (the logging docs' "optimization" switches).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
