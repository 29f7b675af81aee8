"""The backups, in SQLite: one short-lived connection per call, so any thread may use it."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS backup (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    vapp_id TEXT NOT NULL,
    vapp_name TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    created TEXT NOT NULL,
    created_by TEXT NOT NULL,
    task_href TEXT NOT NULL,
    configuration BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS backup_org ON backup (org_id, created);
"""


@dataclass(frozen=True)
class Backup:
    """A configuration backup of one vApp: its representation as vCD returned it."""

    id: str
    org_id: str
    vapp_id: str
    vapp_name: str
    name: str
    description: str
    created: str
    created_by: str
    task_href: str
    configuration: bytes = b""


class BackupStore:
    """Backups in the SQLite file ``path`` (created with its directory on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._ready = False
        self._lock = threading.Lock()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if not self._ready:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with closing(sqlite3.connect(self.path)) as db:
                    db.executescript(_SCHEMA)
                self._ready = True
        with closing(sqlite3.connect(self.path, timeout=10)) as db, db:
            yield db

    def add(
        self,
        *,
        org_id: str,
        vapp_id: str,
        vapp_name: str,
        name: str,
        description: str,
        created_by: str,
        task_href: str,
        configuration: bytes,
    ) -> Backup:
        """Store a new backup."""
        created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        backup = Backup(
            str(uuid.uuid4()),
            org_id,
            vapp_id,
            vapp_name,
            name,
            description,
            created,
            created_by,
            task_href,
            configuration,
        )
        with self._db() as db:
            db.execute(
                "INSERT INTO backup VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    backup.id,
                    org_id,
                    vapp_id,
                    vapp_name,
                    name,
                    description,
                    created,
                    created_by,
                    task_href,
                    configuration,
                ),
            )
        return backup

    def get(self, backup_id: str) -> Backup | None:
        """One backup with its configuration, or ``None``."""
        with self._db() as db:
            row = db.execute("SELECT * FROM backup WHERE id = ?", (backup_id,)).fetchone()
        return Backup(*row) if row else None

    def list(self, org_id: str) -> list[Backup]:
        """The org's backups, oldest first, without their configurations."""
        with self._db() as db:
            rows = db.execute(
                "SELECT id, org_id, vapp_id, vapp_name, name, description, created, created_by,"
                " task_href FROM backup WHERE org_id = ? ORDER BY created, rowid",
                (org_id,),
            ).fetchall()
        return [Backup(*row) for row in rows]

    def delete(self, backup_id: str) -> bool:
        """Delete a backup; whether there was one."""
        with self._db() as db:
            return db.execute("DELETE FROM backup WHERE id = ?", (backup_id,)).rowcount > 0
