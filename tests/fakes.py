"""Fakes of the non-database ports, for unit tests. Stores use the real MemoryStore."""

import io
from typing import BinaryIO

from referrals.domain.model import Event


class MemoryReports:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.failing = False
        self.refused: set[str] = set()  # keys whose writes fail

    def put(self, key: str, data: BinaryIO, content_type: str) -> None:
        if self.failing or key in self.refused:
            raise OSError("report store unavailable")
        self.objects[key] = data.read()

    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def scratch(self) -> BinaryIO:
        return io.BytesIO()

    def delete(self, key: str) -> None:
        if self.failing:
            raise OSError("report store unavailable")
        self.objects.pop(key, None)


class RecordingNotifier:
    def __init__(self, failures: int = 0) -> None:
        self.delivered: list[Event] = []
        self.failures = failures  # how many deliveries fail before they succeed

    def deliver(self, event: Event) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("receiver down")
        self.delivered.append(event)
