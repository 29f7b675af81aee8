"""``[plugins.backup]``: where the backups are kept."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vcdext.settings import setting


@dataclass(frozen=True)
class BackupSettings:
    """``[plugins.backup]``: the backup plugin's own settings."""

    database: str = setting(
        "",
        "SQLite file holding the backups; empty: $XDG_DATA_HOME/vcdext/backup.sqlite3 "
        "(~/.local/share/vcdext/backup.sqlite3).",
    )

    routing_key: str = setting("", "AMQP routing key (vcdext's own key; default: the namespace).")

    def database_path(self) -> Path:
        """The SQLite file to use (the default under the user's data directory)."""
        if self.database:
            return Path(self.database).expanduser()
        data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(data) / "vcdext" / "backup.sqlite3"
