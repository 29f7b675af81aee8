"""SharedVcd: one login shared by handlers and task work, logged out once at shutdown."""

from __future__ import annotations

from typing import Any

import pytest

from vcdext.vcd.errors import VcdConnectionError
from vcdext.vcd.shared import SharedVcd


class _Client:
    """A stand-in VcdClient that counts logins and logouts."""

    sessions: list[_Client] = []

    def __init__(self) -> None:
        self.open = False

    def connect(self) -> None:
        self.open = True
        _Client.sessions.append(self)

    def close(self) -> None:
        self.open = False

    def get(self, href: str, params: Any = None) -> str:
        assert self.open
        return href


def test_logs_in_on_first_use_once_for_all_calls() -> None:
    _Client.sessions = []
    vcd = SharedVcd("https://vcd.test", _Client)  # type: ignore[arg-type]
    assert _Client.sessions == []
    vcd.get("https://vcd.test/api/a")
    vcd.get("https://vcd.test/api/b")
    assert len(_Client.sessions) == 1


def test_after_close_a_late_call_fails_rather_than_log_in_again() -> None:
    """Task work still running after shutdown (past the drain) must not open a session that
    nobody logs out."""
    _Client.sessions = []
    vcd = SharedVcd("https://vcd.test", _Client)  # type: ignore[arg-type]
    vcd.get("https://vcd.test/api/a")
    vcd.close()
    with pytest.raises(VcdConnectionError):
        vcd.get("https://vcd.test/api/b")
    assert [s.open for s in _Client.sessions] == [False]
