"""Logs: one JSON object a line, each with the id of the request it belongs to, no secrets.

`referrals serve` applies `config()`, and uvicorn applies it again in each worker
process; the API's `RequestId` middleware sets the id.
"""

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["auto", "json", "text"]

# The id of the request being served, set by the API's RequestId middleware.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# `%40` too: an email in a URL path or query string arrives percent-encoded. Bounded
# parts keep a long line without an address from costing quadratic time.
# Word characters of any script (`\w`): the API accepts internationalised addresses
# (josé@bücher.de), and a URL carries them percent-encoded (jos%C3%A9%40...).
_EMAIL = re.compile(r"[\w.%+-]{1,64}(?:@|%40)[\w%-]{1,63}(?:\.[\w%-]{1,63})+")
_BEARER = re.compile(r"(?i)\bbearer\s+[^\s,;\"']+")
_API_KEY = re.compile(r"\brk_[A-Za-z0-9_-]+")  # services.keys.KEY_PREFIX
# A referrer portal link's token (`/r/{code}?token=...`) opens their page until it expires.
_LINK_TOKEN = re.compile(r"([?&]token=)[^&\s\"']+")

# Attributes every LogRecord has; anything else on a record was passed as `extra`.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "request_tag",
    "taskName",
    "color_message",  # uvicorn's copy of the message with terminal colours
}


def redact(text: str) -> str:
    """Mask email addresses, API keys and link tokens: logs are kept longer and read more widely."""
    # Each pattern runs only on a line holding its plain mark: a scan costs 12 µs and
    # more, a look for the mark well under one, and most lines hold none.
    if "@" in text or "%40" in text:
        text = _EMAIL.sub("[email]", text)
    if "bearer" in text.lower():
        text = _BEARER.sub("Bearer [key]", text)
    if "token=" in text:
        text = _LINK_TOKEN.sub(r"\1[token]", text)
    if "rk_" in text:
        text = _API_KEY.sub("rk_[key]", text)
    return text


class ContextFilter(logging.Filter):
    """Adds the request id to each record and redacts its message, extras and traceback.

    Installed on the handler, so it sees every record, whichever logger made it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current = request_id.get()
        # For the text format: the id in brackets, or nothing outside a request.
        record.request_tag = f" [{current}]" if current else ""
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: log its parts, redacted like the rest
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = redact(message), None
        for name, value in record.__dict__.items():
            if name not in _STANDARD and isinstance(value, str):
                record.__dict__[name] = redact(value)
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text, so the traceback is printed redacted.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id, then any extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and name not in entry:
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def config(log_format: LogFormat = "json", level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` that sends every logger, uvicorn's too, to stderr.

    Plain data, so uvicorn can hand it to each worker process it spawns. `auto` is
    text on a terminal, JSON for anything else (a file, a pipe, a log collector).
    """
    if log_format == "auto":
        log_format = "text" if sys.stderr.isatty() else "json"
    formatter: dict[str, Any] = (
        {"()": "referrals.logs.JsonFormatter"}
        if log_format == "json"
        else {"format": "%(levelname)-8s %(name)s%(request_tag)s %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "referrals.logs.ContextFilter"}},
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "default",
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["default"], "level": level},
        # uvicorn's loggers lose the handlers its default config gives them and
        # propagate to the root, so they are formatted and redacted like ours.
        "loggers": {
            **{
                name: {"handlers": [], "propagate": True}
                for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
            },
            # Alembic narrates its set-up at INFO (plugins, DDL mode); the migration
            # itself logs one line of ours (adapters/sql/migrate.py).
            "alembic": {"level": "WARNING"},
        },
    }
