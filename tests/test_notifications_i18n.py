"""Blocking-task and notification handlers translate in ``[notifications] locale`` (vCD's
notifications and blocked tasks carry no locale of their user); the core's own decision
messages come from the core's catalog in that locale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.test_notifications import CREATE, FakeVcd, note, runtime_with
from vcdext import ConfigError, Service
from vcdext.i18n import Localization, Translator, package_domain
from vcdext.notifications import (
    BlockingRequest,
    Decision,
    Notification,
    NotificationSettings,
    current_translator,
)
from vcdext.settings import load_settings
from vcdext.transport.notifications import NotificationConsumer
from vcdext.vcloud import notification as n


def decide_with(
    handler: Any, locale: str = "en", localization: Localization | None = None
) -> FakeVcd:
    service = Service("p", namespace="io.example.p")
    service.blocking_task("vappDeploy")(handler)
    vcd = FakeVcd()
    consumer = NotificationConsumer(
        runtime_with(service).registry,
        NotificationSettings(locale=locale),
        url="",
        vcd=lambda: vcd,
        localization=localization,
    )
    consumer.handle(note(n.BLOCKING_TASK_CREATE, entity_name="vappDeploy"))
    return vcd


def posted(vcd: FakeVcd) -> list[tuple[str, str]]:
    return [
        (href.rsplit("/", 1)[-1], n.read_operation_params(body).message)
        for href, body, _ in vcd.posted
    ]


def broken(request: BlockingRequest) -> None:
    raise RuntimeError("secret detail")


@pytest.mark.parametrize(
    ("locale", "handler", "expected"),
    [
        ("en", broken, "The p service could not decide on this task"),
        ("de", broken, "Der Dienst p konnte über diese Aufgabe nicht entscheiden"),
        ("de_AT", broken, "Der Dienst p konnte über diese Aufgabe nicht entscheiden"),
        ("fr", broken, "Le service p n\u2019a pas pu statuer sur cette tâche"),
        ("ja", broken, "The p service could not decide on this task"),  # no catalog: English
        ("en", lambda r: None, "Resumed by the p service"),
        ("de", lambda r: None, "Vom Dienst p fortgesetzt"),
        ("de", lambda r: Decision("abort", ""), "Vom Dienst p abgebrochen"),
        ("fr", lambda r: Decision("fail", ""), "Mise en échec par le service p"),
    ],
)
def test_the_cores_fallback_messages_are_in_the_configured_locale(
    locale: str, handler: Any, expected: str
) -> None:
    [(_, message)] = posted(decide_with(handler, locale))
    assert message == expected


def test_extending_without_a_message_says_still_deciding_in_the_locale() -> None:
    def slow(request: BlockingRequest) -> None:
        request.extend(5000)
        request.extend(5000, "Asking the CMDB")

    vcd = decide_with(slow, "de")
    assert posted(vcd) == [
        ("updateProgress", "Entscheidung steht noch aus"),
        ("updateProgress", "Asking the CMDB"),
        ("resume", "Vom Dienst p fortgesetzt"),
    ]


def test_a_blocking_handler_translates_with_its_plugins_catalog() -> None:
    # The plugin "p" uses hello's catalogs here: German has "Hello, {user}!".
    localization = Localization({"p": package_domain("vcdext_hello")})
    seen: list[tuple[str, Translator]] = []

    def greet(request: BlockingRequest) -> Decision:
        seen.append((request.locale, current_translator()))
        return Decision("fail", request.gettext("Hello, {user}!", user="alice"))

    vcd = decide_with(greet, "de_DE", localization)
    assert posted(vcd) == [("fail", "Hallo, alice!")]
    [(locale, translator)] = seen
    assert locale == "de" and translator.locale == "de"
    english = decide_with(greet, "en", localization)
    assert posted(english) == [("fail", "Hello, alice!")]


def test_a_notification_handler_gets_its_plugins_translator_only_while_it_runs() -> None:
    service = Service("p", namespace="io.example.p")
    said: list[str] = []

    @service.notification(CREATE)
    def created(note: Notification) -> None:
        said.append(current_translator().gettext("Hello, {user}!", user=note.org.name))

    consumer = NotificationConsumer(
        runtime_with(service).registry,
        NotificationSettings(locale="fr"),
        url="",
        localization=Localization({"p": package_domain("vcdext_hello")}),
    )
    consumer.handle(note(CREATE))
    assert said == ["Bonjour, acme !"]
    with pytest.raises(RuntimeError, match="no notification"):
        current_translator()


def test_the_locale_setting_is_read_and_checked(tmp_path: Path) -> None:
    config = tmp_path / "vcdext.toml"
    config.write_text('[notifications]\nlocale = "de-DE"\n')
    assert load_settings(config, environ={}).section(NotificationSettings).locale == "de_DE"
    assert load_settings(None, environ={}).section(NotificationSettings).locale == "en"
    # Any letter case is read as babel spells it, the way the catalogs are found.
    config.write_text('[notifications]\nlocale = "DE"\n')
    assert load_settings(config, environ={}).section(NotificationSettings).locale == "de"
    config.write_text('[notifications]\nlocale = "not a locale"\n')
    with pytest.raises(ConfigError, match="notifications.locale"):
        load_settings(config, environ={}).section(NotificationSettings)
