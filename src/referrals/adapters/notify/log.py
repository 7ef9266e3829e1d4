import logging

from referrals.domain.events import envelope
from referrals.domain.model import Event

logger = logging.getLogger("referrals.events")


class LogNotifier:
    def deliver(self, event: Event) -> None:
        logger.info("event %s", envelope(event).decode())
