"""This process and the machine it runs on, as other processes see them."""

import os
import socket
from datetime import datetime

from referrals.domain.model import new_id


def attempt_owner(now: datetime) -> str:
    """Names one attempt at a payout run in its lease, so an operator reading the lease
    sees which machine and process hold it; the id keeps two attempts of one process
    apart."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_id(now)}"
