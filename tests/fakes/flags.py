"""In-memory flag store with the StateStore's flag methods (kill switch and breakers survive a 'restart')."""

from __future__ import annotations


class MemoryFlagStore:
    def __init__(self) -> None:
        self.flags: dict[str, str] = {}
        self.writes = 0

    def get_flag(self, name: str) -> str | None:
        return self.flags.get(name)

    def set_flag(self, name: str, value: str) -> None:
        self.writes += 1
        self.flags[name] = value

    def clear_flag(self, name: str) -> None:
        self.writes += 1
        self.flags.pop(name, None)

    def flags_with_prefix(self, prefix: str) -> dict[str, str]:
        return {name: value for name, value in sorted(self.flags.items()) if name.startswith(prefix)}
