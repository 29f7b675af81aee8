"""What the plugins' notification and blocking-task handlers need from vCD's settings.

:func:`configure_reactions` makes vCD's system settings serve the declared handlers, changing
only what is missing (a second run changes nothing; ``dry_run`` only reports):

* ``GET|PUT /api/admin/extension/settings/notifications``: ``EnableNotifications`` is turned
  on when any handler is declared (a blocked task is announced by a notification too);
* ``GET /api/admin/extension/settings/blockingTask`` and
  ``PUT …/settings/blockingTask/operations``: each declared operation is added to the
  ``BlockingTaskOperations``; operations other services block are kept, and the timeout and
  its default action stay the administrator's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from ..vcloud.notification import (
    NOTIFICATIONS_SETTINGS,
    TASK_OPERATION_LIST,
    read_blocking_task_settings,
    read_notifications_settings,
    write_blocking_operations,
    write_notifications_settings,
)
from .client import VcdClient

log = logging.getLogger(__name__)

NOTIFICATIONS_HREF = "/api/admin/extension/settings/notifications"
BLOCKING_HREF = "/api/admin/extension/settings/blockingTask"
BLOCKING_OPERATIONS_HREF = "/api/admin/extension/settings/blockingTask/operations"


def configure_reactions(
    client: VcdClient,
    *,
    operations: Iterable[str] = (),
    notifications: bool = False,
    dry_run: bool = False,
) -> list[str]:
    """Enable notifications and block ``operations`` where vCD does not yet; the changes made
    (or, with ``dry_run``, planned), one line each."""
    wanted = list(dict.fromkeys(operations))
    changes: list[str] = []
    if not (wanted or notifications):
        return changes
    if not client.read(NOTIFICATIONS_HREF, read_notifications_settings):
        changes.append("notifications: enable (EnableNotifications=true)")
        if not dry_run:
            client.put(
                NOTIFICATIONS_HREF, write_notifications_settings(True), NOTIFICATIONS_SETTINGS
            )
    if wanted:
        current = client.read(BLOCKING_HREF, read_blocking_task_settings)
        missing = [op for op in wanted if op not in current.operations]
        if missing:
            changes.append(f"blocking tasks: block {', '.join(missing)}")
            if not dry_run:
                client.put(
                    BLOCKING_OPERATIONS_HREF,
                    write_blocking_operations([*current.operations, *missing]),
                    TASK_OPERATION_LIST,
                )
    for change in changes:
        log.info("vCD settings %s: %s", "planned" if dry_run else "changed", change)
    return changes


__all__ = ["configure_reactions"]
