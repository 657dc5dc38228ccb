"""Fakes for the notifier's unit tests: a clock whose sleep only moves it, and channels that record or fail."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class RecordingChannel:
    name: str = "fake#1"
    supports_attachments: bool = True
    sent: list[tuple[str, str, bytes | None]] = field(default_factory=list)
    failures_left: int = 0  # refuse (False) this many times first
    raises: bool = False  # fail by raising instead of refusing

    def send(self, title: str, body: str, attachment: Path | None) -> bool:
        if self.failures_left > 0:
            self.failures_left -= 1
            if self.raises:
                raise ConnectionError("boom https://secret.example/token")
            return False
        self.sent.append((title, body, attachment.read_bytes() if attachment is not None else None))
        return True
