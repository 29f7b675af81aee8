"""Reacting to what happens in vCD: notification handlers and blocking-task handlers.

::

    service = Service("policy", namespace="io.example.policy")

    @service.notification("com/vmware/vcloud/event/vapp/create", success=True)
    def vapp_created(note: Notification) -> None:
        log.info("%s created %s in %s", note.user.id, note.entity.id, note.org.name)

    @service.blocking_task("vappDeploy")
    def approve_deploy(task: BlockingRequest) -> Decision | None:
        if not allowed(task):
            return fail(task.gettext("Deployment refused: the vApp has no cost centre"))
        return None  # resume

Both are declarations, like operations: the registrar records them, the runtime's
notification consumer (:mod:`vcdext.transport.notifications`) binds a queue on the
notification exchange (``[notifications]``) with routing keys derived from them and calls the
handlers; registration with vCD puts the blocking operations into vCD's blocking task settings
and turns notifications on. A notification is acknowledged once every handler returned.

A blocking handler's outcome decides the task: ``None`` (or :func:`resume`) resumes it,
:func:`abort` aborts it, :func:`fail` fails it, each with a message; an exception fails it
(:class:`Refused` with its own message, anything else with a generic one, logged here).
:meth:`BlockingRequest.extend` asks vCD for more time during a long decision.

**Language.** A blocked task and a notification carry no locale of the user who caused them
(no ``Accept-Language``, and neither vCD's ``Notification``, ``BlockingTask`` nor ``User``
documents name one), so messages are written in ``[notifications] locale`` (default ``en``),
negotiated against the plugin's catalogs like a request's: :class:`BlockingRequest` offers
``gettext`` and friends in it, and :func:`current_translator` gives any handler (notification
or blocking) its plugin's :class:`~vcdext.i18n.Translator`. The core's own fallback messages use
the core's catalog in the same locale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

from babel import Locale, UnknownLocaleError

from .errors import VcdExtError
from .i18n import Localized, Translator, english
from .settings import mask_secret, setting
from .vcloud.notification import BlockingAction, BlockingTask, Notification, check_type

NotificationHandler = Callable[[Notification], Any]


def _check_locale(value: str) -> str:
    tag = value.strip().replace("-", "_")
    try:
        return str(Locale.parse(tag))  # "DE" → "de": catalogs are found by that spelling
    except (ValueError, TypeError, UnknownLocaleError):
        raise ValueError("expected a locale such as en, de or de_DE") from None


@dataclass(frozen=True)
class NotificationSettings:
    """``[notifications]``: the notification exchange vCD publishes to, and this service's
    queue on it (used when a plugin declares notification or blocking-task handlers)."""

    url: str = setting(
        "",
        "Broker URL of the notification exchange; empty: amqp.url (vCD publishes both on the "
        "broker of its AmqpSettings).",
        secret=True,
        mask=mask_secret,
    )
    exchange: str = setting(
        "systemExchange",
        "The notification exchange: vCD's AmqpExchange for XML notifications, "
        "'<AmqpPrefix>.notifications20' for the JSON ones (both formats are read).",
    )
    queue: str = setting(
        "vcdext.notifications",
        "Durable queue this service binds to the exchange (instances share it).",
    )
    workers: int = setting(4, "Handler threads for notifications and blocking tasks.", minimum=1)
    manage_vcd: bool = setting(
        True,
        "On registration, add the declared blocking operations to vCD's blocking task "
        "settings and enable notifications when a plugin needs them.",
    )
    locale: str = setting(
        "en",
        "Language of blocking-task messages and of what handlers translate (vCD's "
        "notifications carry no user locale): en, de, de_DE, ...; a plugin without that "
        "catalog answers in English.",
        check=_check_locale,
    )


@dataclass(frozen=True)
class NotificationDeclaration:
    """One ``@notification`` declaration: the handler runs for notifications of ``type``
    (``success``: only successful or only failed operations; ``None``: both)."""

    type: str
    handler: NotificationHandler
    success: bool | None = None
    plugin: str = ""
    name: str = ""

    def matches(self, note: Notification) -> bool:
        return note.type == self.type and self.success in (None, note.success)


@dataclass(frozen=True)
class Decision:
    """What a blocking-task handler decides: the action and its message."""

    action: BlockingAction
    message: str


def resume(message: str = "") -> Decision:
    """Let the blocked operation go on."""
    return Decision("resume", message)


def abort(message: str) -> Decision:
    """End the operation as if it had been cancelled (vCD reports success)."""
    return Decision("abort", message)


def fail(message: str) -> Decision:
    """End the operation with an error carrying ``message``."""
    return Decision("fail", message)


class Refused(VcdExtError):
    """Raised by a blocking handler: the task is failed with this message."""


@dataclass
class BlockingRequest(Localized):
    """A blocked task handed to a blocking-task handler.

    ``operation`` is the blocked operation (``vappDeploy``), ``task`` the ``BlockingTask`` vCD
    holds (org, user, the object it operates on as ``task.task_owner``), ``notification`` what
    announced it, and ``vcd`` a logged-in :class:`vcdext.vcd.VcdClient` to look things up with.
    ``gettext``, ``ngettext``, ``pgettext``, ``format_number``, ``format_date`` and ``render``
    work in :attr:`locale`, ``[notifications] locale`` negotiated against the plugin's
    catalogs (a blocked task carries no locale of its user).
    """

    operation: str
    task: BlockingTask
    notification: Notification
    vcd: Any
    config: Any = field(default_factory=dict)
    #: The plugin's catalog in ``[notifications] locale`` (:mod:`vcdext.i18n`).
    translator: Translator = field(default_factory=english, repr=False)
    _extend: Callable[[int, str], None] | None = field(default=None, repr=False)

    def extend(self, timeout_ms: int, message: str = "") -> None:
        """Ask vCD for ``timeout_ms`` more milliseconds before the default action fires
        (``message`` empty: the core's "Still deciding" in :attr:`locale`)."""
        if self._extend is not None:
            self._extend(timeout_ms, message)


_translator: ContextVar[Translator] = ContextVar("vcdext_notification_translator")


def current_translator() -> Translator:
    """The running notification or blocking-task handler's plugin catalog in ``[notifications]
    locale``; raises :class:`RuntimeError` outside such a handler (in a request, use
    ``vcdext.current()``)."""
    try:
        return _translator.get()
    except LookupError:
        raise RuntimeError("no notification or blocking task is being handled here") from None


@contextmanager
def _translating(translator: Translator) -> Iterator[None]:
    """Make ``translator`` the :func:`current_translator` while a handler runs."""
    token = _translator.set(translator)
    try:
        yield
    finally:
        _translator.reset(token)


BlockingHandler = Callable[[BlockingRequest], "Decision | None"]


@dataclass(frozen=True)
class BlockingDeclaration:
    """One ``@blocking_task`` declaration: the handler decides tasks of ``operation``."""

    operation: str
    handler: BlockingHandler
    plugin: str = ""
    name: str = ""


def check_operation(operation: str) -> str:
    """A task operation name (``vappDeploy``): letters and digits only."""
    if not operation or not operation.isalnum() or not operation[0].isalpha():
        raise ValueError(f"blocking task operation {operation!r} must be a name like vappDeploy")
    return operation


def make_notification(
    type: str, handler: NotificationHandler, *, success: bool | None = None, name: str = ""
) -> NotificationDeclaration:
    """A checked :class:`NotificationDeclaration`; :class:`ValueError` for a bad type."""
    check_type(type)
    if not callable(handler):
        raise ValueError("a notification handler must be callable")
    return NotificationDeclaration(type, handler, success, name=name or _name(handler))


def make_blocking(
    operation: str, handler: BlockingHandler, *, name: str = ""
) -> BlockingDeclaration:
    """A checked :class:`BlockingDeclaration`; :class:`ValueError` for a bad operation."""
    check_operation(operation)
    if not callable(handler):
        raise ValueError("a blocking task handler must be callable")
    return BlockingDeclaration(operation, handler, name=name or _name(handler))


def _name(handler: Callable[..., Any]) -> str:
    return str(getattr(handler, "__name__", repr(handler)))


#: What ``Decision.action`` may be, for readers of this module.
Action = Literal["resume", "abort", "fail"]

__all__ = [
    "BlockingDeclaration",
    "BlockingRequest",
    "BlockingTask",
    "Decision",
    "Notification",
    "NotificationDeclaration",
    "NotificationSettings",
    "Refused",
    "abort",
    "current_translator",
    "fail",
    "resume",
]
