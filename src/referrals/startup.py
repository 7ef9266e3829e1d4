"""What an operator is told when the service cannot start: one line, never a traceback.

The CLI runs its set-up (settings, the database, the port) inside `operator_errors()`,
which turns the failures an operator can fix into a line naming what to change.
Anything else is a bug and keeps its traceback.
"""

import errno
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError

from referrals.config import ConfigError, Settings


@contextmanager
def operator_errors() -> Iterator[None]:
    """Print what the operator must change on stderr and exit with status 1."""
    try:
        yield
    except ValidationError as error:
        fail(*settings_problems(error))
    except ConfigError as error:
        fail(str(error))
    except DBAPIError as error:
        fail(database_problem(error))


def fail(*lines: str) -> NoReturn:
    for line in lines:
        print(f"error: {line}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def settings_problems(error: ValidationError) -> list[str]:
    """Each bad setting by the environment variable that holds it. The value itself is
    left out: it may be a secret."""
    prefix = Settings.model_config.get("env_prefix", "")
    lines = []
    for problem in error.errors(include_input=False, include_url=False):
        field = str(problem["loc"][0]) if problem["loc"] else ""
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{prefix}{field.upper()}: {message}")
    return lines


def database_problem(error: DBAPIError) -> str:
    """The driver's own first line (it names the host, the database or the file) with
    what to do about the common cases."""
    reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
    hint = ""
    if "does not exist" in reason and "database" in reason:
        hint = " (create it, e.g. `createdb NAME`, or fix REFERRALS_DATABASE_URL)"
    elif "unable to open database file" in reason:
        hint = " (check REFERRALS_DATABASE_URL and that the folder is writable)"
    elif "Connection refused" in reason or "could not connect" in reason:
        hint = " (is the database server running? check REFERRALS_DATABASE_URL)"
    return f"cannot open the database: {reason}{hint}"


def port_in_use(host: str, port: int) -> bool:
    """Whether another process listens on `host:port` (checked before migrating, so a
    second `serve` on a taken port says so at once). The socket is made as uvicorn
    makes its own: IPv6 for a host with a colon, IPv4 otherwise, SO_REUSEADDR set (a
    port whose last connections linger in TIME_WAIT is free)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.errno == errno.EADDRINUSE  # anything else, uvicorn reports itself
    return False
