import contextvars
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from referrals.logs import ContextFilter, JsonFormatter, redact, request_id

KEY = "rk_live_3q0dXr8n-Zp_aLk2"


@pytest.fixture
def output() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("referrals.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_record_is_one_json_object_a_line(output: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = output
    logger.info("first %s", "line")
    logger.warning("second\nline", extra={"period": "2026-10", "total_cents": 4500})

    first, second = lines(stream)

    assert first["message"] == "first line"
    assert first["level"] == "INFO"
    assert first["logger"] == "referrals.test_logs"
    assert str(first["time"]).endswith("+00:00")
    assert first["request_id"] is None  # logged outside any request
    assert second["message"] == "second\nline"
    assert second["period"] == "2026-10" and second["total_cents"] == 4500


def test_the_request_id_of_the_context_is_on_the_line(
    output: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = output

    def in_request() -> None:
        request_id.set("req-42")
        logger.info("inside")

    contextvars.copy_context().run(in_request)
    logger.info("outside")

    assert [line["request_id"] for line in lines(stream)] == ["req-42", None]


def test_emails_and_keys_in_messages_are_masked(
    output: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = output
    logger.info("signup of %s with Authorization: Bearer %s", "Bob.Smith+x@Example.co.uk", KEY)
    logger.info("key %s given", KEY)

    first, second = lines(stream)

    assert first["message"] == "signup of [email] with Authorization: Bearer [key]"
    assert second["message"] == "key rk_[key] given"


def test_emails_and_keys_in_extras_and_tracebacks_are_masked(
    output: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = output
    try:
        raise ValueError(f"no referrer for carol@example.com ({KEY})")
    except ValueError:
        logger.exception("failed", extra={"email": "carol@example.com"})

    (entry,) = lines(stream)

    assert entry["email"] == "[email]"
    assert "carol@example.com" not in stream.getvalue() and KEY not in stream.getvalue()
    assert "ValueError: no referrer for [email] (rk_[key])" in str(entry["exception"])


def test_a_percent_encoded_email_in_an_access_line_is_masked() -> None:
    line = '127.0.0.1:5000 - "GET /v1/referrers/bob%40example.com/referrals?limit=5 HTTP/1.1" 200'

    assert (
        redact(line)
        == '127.0.0.1:5000 - "GET /v1/referrers/[email]/referrals?limit=5 HTTP/1.1" 200'
    )


def test_a_portal_link_token_in_an_access_line_is_masked() -> None:
    line = '127.0.0.1:5000 - "GET /r/ABCD1234?token=eyJjIjoi.u77mAaU-X_9 HTTP/1.1" 200'

    assert redact(line) == '127.0.0.1:5000 - "GET /r/ABCD1234?token=[token] HTTP/1.1" 200'


def test_a_bearer_token_is_masked_whatever_the_case() -> None:
    line = "proxy sent authorization: bEaReR abc.def-123"

    assert redact(line) == "proxy sent authorization: Bearer [key]"


def test_text_without_secrets_is_unchanged() -> None:
    line = '127.0.0.1:5000 - "POST /v1/signups HTTP/1.1" 201'

    assert redact(line) is line


def test_a_record_with_a_bad_format_string_is_still_logged_masked(
    output: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = output
    logger.info("two %s %s", "dan@example.com")

    (entry,) = lines(stream)

    assert "[email]" in str(entry["message"]) and "dan@example.com" not in stream.getvalue()


# In a child process: dictConfig replaces the handlers of the whole process, pytest's too.
SERVE_CONFIG = f"""
import logging, logging.config
from referrals.logs import config
logging.config.dictConfig(config("json"))
logging.getLogger("uvicorn.access").info(
    '%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", "/v1/x?e=a@b.io", "1.1", 200
)
logging.getLogger("referrals.api").warning("Bearer %s", "{KEY}")
"""


def test_the_serve_config_sends_uvicorns_lines_through_the_json_formatter() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SERVE_CONFIG], capture_output=True, text=True, check=True
    )

    access, api = (json.loads(line) for line in done.stderr.splitlines())
    assert access["logger"] == "uvicorn.access"
    assert access["message"] == '127.0.0.1:1 - "GET /v1/x?e=[email] HTTP/1.1" 200'
    assert api["logger"] == "referrals.api"
    assert api["message"] == "Bearer [key]"


# `auto`, as `serve` uses it by default, with stderr a pipe or a terminal.
AUTO_CONFIG = """
import logging, logging.config
from referrals.logs import config
logging.config.dictConfig(config("auto"))
logging.getLogger("alembic.runtime.plugins").info("setup plugin alembic.autogenerate.schemas")
logging.getLogger("referrals.migrate").info("migrated the database from empty to 0007")
"""


def test_auto_logs_json_when_stderr_is_not_a_terminal() -> None:
    done = subprocess.run(
        [sys.executable, "-c", AUTO_CONFIG], capture_output=True, text=True, check=True
    )
    [line] = done.stderr.splitlines()  # alembic's set-up chatter is not logged at INFO
    assert json.loads(line)["message"] == "migrated the database from empty to 0007"


def test_auto_logs_text_on_a_terminal() -> None:
    import pty

    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-c", AUTO_CONFIG], stderr=follower, timeout=60, check=True
        )
        assert done.returncode == 0
        written = os.read(leader, 4096).decode()
    finally:
        os.close(leader)
        os.close(follower)
    [line] = written.splitlines()
    # Outside a request there is no request id, and no empty brackets for it either.
    assert line == "INFO     referrals.migrate migrated the database from empty to 0007"


@pytest.mark.parametrize(
    "line",
    [
        "signup from josé@bücher.de",
        "GET /v1/referrals?email=jos%C3%A9%40b%C3%BCcher.de HTTP/1.1",
        "Ελένη@παράδειγμα.ελ wrote",
    ],
)
def test_internationalised_addresses_are_masked(line: str) -> None:
    masked = redact(line)
    assert "[email]" in masked
    assert "jos" not in masked and "Ελένη" not in masked
