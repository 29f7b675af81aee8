"""The few points at which the runtime reports what it does, for metrics and health.

The dispatcher, the AMQP and MQTT transports, the notification consumer, the task runner and
the composition root call one
:class:`Observer`; this base class does nothing, so without ``runtime.health_port`` nothing
is measured at all. :class:`vcdext.metrics.Metrics` is the Prometheus implementation. An
observer method must be cheap and must not raise: it runs on the request path.
"""

from __future__ import annotations


class Observer:
    """What happened, told by the parts that saw it. Every method is a no-op here."""

    def request_started(self) -> None:
        """A worker started on a request (the dispatcher decoded it or failed to)."""

    def request_done(self, service: str, operation: str, status: int, seconds: float) -> None:
        """A request was answered with ``status`` after ``seconds`` of dispatch.

        :param service: the plugin name of the service it was routed to (``""``: none).
        :param operation: the operation's name (``""``: no operation matched).
        """

    def dropped_late(self, service: str) -> None:
        """A request waited past vCD's timeout and was answered 503 without its handler."""

    def redelivered(self, service: str) -> None:
        """The broker delivered a request again (``redelivered`` flag set)."""

    def reconnected(self, connection: str) -> None:
        """A broker connection (``"consumer"``, ``"publisher"``, ``"notifications"`` or
        ``"mqtt"``) was lost; it reconnects."""

    def replied(self) -> None:
        """The broker confirmed a reply."""

    def registration(self, outcome: str, changes: int) -> None:
        """A registration run ended: ``outcome`` is ``"ok"``, ``"failed"`` or ``"skipped"``,
        ``changes`` the number of changes applied to vCD."""

    def notification_handled(self, plugin: str, type: str, outcome: str, seconds: float) -> None:
        """A notification handler (or a blocking-task decision) of ``plugin`` ran on a
        notification of ``type`` for ``seconds``: ``outcome`` is ``"ok"``, ``"requeued"``
        (it raised; the notification comes again) or ``"failed"`` (it raised on a
        redelivery, or the notification could not be read: dropped)."""

    def blocking_decision(self, plugin: str, action: str) -> None:
        """A blocking-task handler of ``plugin`` acted: ``action`` is ``"resume"``,
        ``"abort"``, ``"fail"`` (posted to vCD), ``"extend"`` (asked for more time) or
        ``"default"`` (the task was no longer waiting: vCD's default action fired at its
        timeout, or an earlier delivery decided it)."""

    def task_state(self, state: str) -> None:
        """A vCD task the runtime tracks entered ``state`` (``running``, ``success``, …)."""


#: The observer that measures nothing.
NO_OBSERVER = Observer()
