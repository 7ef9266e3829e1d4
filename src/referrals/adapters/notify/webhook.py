import hashlib
import hmac
import re
import time
from collections.abc import Callable

import httpx

from referrals.domain.events import envelope
from referrals.domain.model import Event

SIGNATURE_HEADER = "Referrals-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`: the timestamp lets receivers refuse replays."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: float = 300) -> bool:
    """What a receiver does with the signature header (and what the tests check)."""
    # [0-9], not \d or isdigit(): the header is untrusted and may carry Unicode digits.
    match = re.fullmatch(r"t=([0-9]{1,12}),v1=([0-9a-f]{64})", header)
    if match is None:
        return False
    timestamp = int(match[1])
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body).encode(), header.encode())


class WebhookNotifier:
    """POSTs each event, signed; a non-2xx answer raises so the outbox retries it."""

    def __init__(
        self,
        url: str,
        secret: str,
        client: httpx.Client,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.secret = secret
        self.client = client
        self.clock = clock

    def deliver(self, event: Event) -> None:
        body = envelope(event)
        headers = {
            "Content-Type": "application/json",
            "Referrals-Event-Id": event.id,
            SIGNATURE_HEADER: sign(self.secret, int(self.clock()), body),
        }
        response = self.client.post(self.url, content=body, headers=headers)
        response.raise_for_status()
