"""Localized replies: the locale negotiated per request, the plugin's and the core's catalogs,
templates, formats, and the catalogs loaded once per (domain, locale)."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vcdext_hello.plugin as hello
from vcdext import NotFound, Request, Service, current, hookimpl
from vcdext import i18n as i18n_module
from vcdext.i18n import Domain, Localization, bundle_locale, placeholders
from vcdext.testing import TestClient, make_runtime

USER = "urn:vcloud:user:44fbd6f9-7a76-4bca-b273-3536b181ad09"
JSON = {"Accept": "application/*+json;version=36.0"}


def client() -> TestClient:
    return TestClient(make_runtime(hello), user=USER)


HELLO_CLIENT = client()


@pytest.mark.parametrize(
    ("accept_language", "text"),
    [
        ("de-DE,de;q=0.9", f"Hallo, {USER}!"),
        ("fr", f"Bonjour, {USER} !"),
        ("fr-CA,fr;q=0.8,de;q=0.5", f"Bonjour, {USER} !"),
        ("tlh,xx;q=0.5", f"Hello, {USER}!"),
        ("", f"Hello, {USER}!"),
        ("de;q=0.2,fr;q=0.9", f"Bonjour, {USER} !"),
        ("DE", f"Hallo, {USER}!"),  # tags are case-insensitive (RFC 4647)
        ("FR-ca", f"Bonjour, {USER} !"),
    ],
)
def test_hello_answers_in_the_callers_language(accept_language: str, text: str) -> None:
    headers = {"Accept-Language": accept_language} if accept_language else {}
    xml = client().get("/api/hello", headers=headers)
    assert xml.status == 200
    assert xml.xml().text == text
    as_json = client().get("/api/hello", headers={**headers, **JSON})
    assert as_json.json()["text"] == text


def test_the_xml_greeting_names_its_language() -> None:
    greeting = client().get("/api/hello", headers={"Accept-Language": "de-DE,de;q=0.9"}).xml()
    assert greeting.get("{http://www.w3.org/XML/1998/namespace}lang") == "de"


def test_the_template_escapes_what_it_is_given() -> None:
    response = TestClient(make_runtime(hello), user='x"<&>y').get(
        "/api/hello", headers={"Accept-Language": "fr"}
    )
    assert response.status == 200
    greeting = response.xml()  # well-formed: quotes and brackets were escaped
    assert greeting.get("user") == 'x"<&>y'
    assert greeting.text == 'Bonjour, x"<&>y !'


def test_org_greeting_in_german() -> None:
    acme = "9aee51e8-654e-49a8-8dab-3fdbf00a21ae"
    response = TestClient(
        make_runtime(hello), org=f"urn:vcloud:org:{acme}", rights=[hello.VIEW_ORG_GREETING]
    ).get(f"/api/org/{acme}/hello", headers={"Accept-Language": "de"})
    assert response.xml().text == f"Hallo, Organisation {acme}!"


@pytest.mark.parametrize(
    ("accept_language", "not_found", "not_allowed"),
    [
        ("de-DE,de;q=0.9", "Unter /api/nothing gibt es keine Ressource", "ist für"),
        ("fr", "Aucune ressource à l\u2019adresse /api/nothing", "n\u2019est pas autorisée"),
        ("ja", "No resource at /api/nothing", "is not allowed on"),
    ],
)
def test_the_cores_errors_speak_the_callers_language(
    accept_language: str, not_found: str, not_allowed: str
) -> None:
    headers = {"Accept-Language": accept_language}
    missing = client().get("/api/nothing", headers=headers)
    assert missing.status == 404
    assert missing.xml().get("message") == not_found
    wrong = client().delete("/api/hello", headers=headers)
    assert wrong.status == 405
    assert not_allowed in wrong.xml().get("message")
    assert "/api/hello" in wrong.xml().get("message")
    as_json = client().get("/api/nothing", headers={**headers, **JSON})
    assert as_json.json()["message"] == not_found


def test_a_missing_right_is_reported_in_french() -> None:
    acme = "9aee51e8-654e-49a8-8dab-3fdbf00a21ae"
    response = TestClient(make_runtime(hello), org=f"urn:vcloud:org:{acme}").get(
        f"/api/org/{acme}/hello", headers={"Accept-Language": "fr"}
    )
    assert response.status == 403
    assert response.xml().get("message") == (
        "Droit(s) manquant(s) : {io.vcdext.hello}:View Org Greeting"
    )


def _seeded_package(root: Path, name: str, po: str, template: str | None = None) -> None:
    package = root / name
    (package / "locales" / "de" / "LC_MESSAGES").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "locales" / "de" / "LC_MESSAGES" / f"{name}.po").write_text(
        textwrap.dedent(po), encoding="utf-8"
    )
    if template is not None:
        (package / "templates").mkdir()
        (package / "templates" / "page.txt").write_text(template, encoding="utf-8")


_PO = """\
    msgid ""
    msgstr ""
    "Language: de\\n"
    "Plural-Forms: nplurals=2; plural=(n != 1);\\n"
    "Content-Type: text/plain; charset=utf-8\\n"

    msgid "{n} backup"
    msgid_plural "{n} backups"
    msgstr[0] "eine Sicherung"
    msgstr[1] "{n} Sicherungen"

    msgctxt "button"
    msgid "Open"
    msgstr "Öffnen"

    msgid "Open"
    msgstr "Offen"

    #, fuzzy
    msgid "Close"
    msgstr "Schließen"
    """


def test_handlers_get_gettext_ngettext_pgettext_and_formats(tmp_path, monkeypatch) -> None:
    _seeded_package(tmp_path, "i18n_demo_pkg", _PO)
    monkeypatch.syspath_prepend(str(tmp_path))
    service = Service("demo", namespace="io.example.demo")

    @service.operation("GET", "/api/demo", produces=["application/json"])
    def demo(request: Request) -> dict[str, str]:
        ctx = current()
        return {
            "locale": ctx.locale,
            "one": ctx.ngettext("{n} backup", "{n} backups", 1),
            "many": ctx.ngettext("{n} backup", "{n} backups", 3),
            "button": ctx.pgettext("button", "Open"),
            "plain": ctx.gettext("Open"),
            "fuzzy": ctx.gettext("Close"),
            "date": ctx.format_date(date(2026, 12, 1), "long"),
            "number": ctx.format_number(1234567.5),
        }

    class Plugin:
        @hookimpl
        def vcdext_register(self, registrar):
            registrar.add_service(service)

    Plugin.__module__ = "i18n_demo_pkg.plugin"
    runtime = make_runtime(demo=Plugin())
    accept = {"Accept": "application/json"}
    got = (
        TestClient(runtime).get("/api/demo", headers={**accept, "Accept-Language": "de-AT"}).json()
    )
    assert got == {
        "locale": "de",
        "one": "eine Sicherung",
        "many": "3 Sicherungen",
        "button": "Öffnen",
        "plain": "Offen",
        "fuzzy": "Close",  # a fuzzy entry is not used
        "date": "1. Dezember 2026",
        "number": "1.234.567,5",
    }
    english = TestClient(runtime).get("/api/demo", headers=accept).json()
    assert (english["locale"], english["many"], english["number"]) == (
        "en",
        "3 backups",
        "1,234,567.5",
    )


def test_templates_translate_with_the_i18n_extension(tmp_path, monkeypatch) -> None:
    template = (
        '{{ _("Open") }} {{ pgettext("button", "Open") }} '
        "{% trans count=n %}{{ count }} backup{% pluralize %}{{ count }} backups{% endtrans %} "
        "{{ value }}"
    )
    po = _PO.replace('"{n} backup"', '"%(count)s backup"').replace(
        '"{n} backups"', '"%(count)s backups"'
    )
    po = po.replace('"{n} Sicherungen"', '"%(count)s Sicherungen"')
    _seeded_package(tmp_path, "i18n_tpl_pkg", po, template)
    monkeypatch.syspath_prepend(str(tmp_path))
    localization = Localization({"tpl": i18n_module.package_domain("i18n_tpl_pkg")})
    german = localization.translator("tpl", ["de"])
    assert german.render("page.txt", n=2, value="<b>") == "Offen Öffnen 2 Sicherungen &lt;b&gt;"
    english = localization.translator("tpl", ["ja"])
    assert english.render("page.txt", n=1, value="&") == "Open Open 1 backup &amp;"
    with pytest.raises(LookupError):
        german.render("missing.txt")


def test_catalogs_are_loaded_once_per_domain_and_locale(monkeypatch) -> None:
    loads: list[tuple[str, str]] = []
    real = i18n_module._load

    def counting(domain: Domain, locale: str):
        loads.append((domain.name, locale))
        return real(domain, locale)

    monkeypatch.setattr(i18n_module, "_load", counting)
    c = client()
    for language in ("de", "de-DE", "fr", "de", "fr-FR", "xx", "de"):
        assert c.get("/api/hello", headers={"Accept-Language": language}).status == 200
        assert c.get("/api/none", headers={"Accept-Language": language}).status == 404
    assert sorted(loads) == sorted(
        [
            ("vcdext", "de"),
            ("vcdext", "fr"),
            ("vcdext", "en"),
            ("vcdext_hello", "de"),
            ("vcdext_hello", "fr"),
            ("vcdext_hello", "en"),
        ]
    )


def test_negotiation_uses_only_locales_that_exist() -> None:
    localization = Localization()
    core = localization.core
    assert set(localization.available(core)) >= {"de", "en", "fr"}
    assert localization.negotiate(core, ["de_CH", "fr"]) == "de"
    assert localization.negotiate(core, ["es", "fr"]) == "fr"
    assert localization.negotiate(core, ["es"]) == "en"
    assert localization.negotiate(Domain("nothing", None), ["de"]) == "en"


def test_bundle_locale_names_and_placeholders() -> None:
    assert [bundle_locale(x) for x in ("en", "de", "fr", "pt_BR")] == [
        "en_US",
        "de_DE",
        "fr_FR",
        "pt_BR",
    ]
    assert placeholders("{resourceName} (%(count)s) {x.y}") == {"resourceName", "count"}


def test_hello_bundle_messages_come_from_its_catalogs() -> None:
    runtime = make_runtime(hello)
    (plugin,) = runtime.registry.services
    messages = runtime.bundle_messages()[plugin]
    assert set(messages) == {"en_US", "de_DE", "fr_FR"}
    assert messages["en_US"] == {
        "io.vcdext.hello": "Hello World Service",
        "RIGHT_VIEW_ORG_GREETING": "View Org Greeting",
    }
    assert messages["de_DE"]["RIGHT_VIEW_ORG_GREETING"] == "Gruß der Organisation anzeigen"
    assert messages["fr_FR"]["io.vcdext.hello"] == "Service Bonjour le monde"


def test_a_service_without_catalogs_still_names_its_namespace_and_rights() -> None:
    service = Service("plain", namespace="io.example.plain")
    service.right("Do It", bundle_key="RIGHT_DO_IT")

    @hookimpl
    def vcdext_register(registrar):
        registrar.add_service(service)

    class Plugin:
        pass

    plugin = Plugin()
    plugin.vcdext_register = vcdext_register  # type: ignore[attr-defined]
    runtime = make_runtime(plain=plugin)
    assert runtime.bundle_messages() == {
        "plain": {"en_US": {"io.example.plain": "plain", "RIGHT_DO_IT": "Do It"}}
    }


def test_an_error_a_handler_raises_without_a_message_is_localized() -> None:
    service = Service("gone", namespace="io.example.gone")

    @service.operation("GET", "/api/gone")
    def gone(request: Request) -> None:
        raise NotFound()

    @service.operation("GET", "/api/gone/own")
    def own(request: Request) -> None:
        raise NotFound("Backup 7 does not exist")

    class Plugin:
        @hookimpl
        def vcdext_register(self, registrar):
            registrar.add_service(service)

    c = TestClient(make_runtime(gone=Plugin()))
    german = {"Accept-Language": "de"}
    assert c.get("/api/gone", headers=german).xml().get("message") == "Ressource nicht gefunden"
    assert c.get("/api/gone").xml().get("message") == "Resource not found"
    # the plugin's own message is the plugin's to translate (ctx.gettext)
    assert c.get("/api/gone/own", headers=german).xml().get("message") == "Backup 7 does not exist"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    header=st.text(max_size=60)
    | st.lists(
        st.sampled_from(
            ["de", "de-DE", "fr", "*", "en-US", "q=", ";q=0", ";q=0.5", ",", "zz-ZZ", "-", "_"]
        ),
        max_size=8,
    ).map("".join)
)
def test_any_accept_language_gets_an_answer_in_a_shipped_language(header: str) -> None:
    response = HELLO_CLIENT.get("/api/hello", headers={"Accept-Language": header})
    assert response.status == 200
    assert response.xml().text in {f"Hello, {USER}!", f"Hallo, {USER}!", f"Bonjour, {USER} !"}


class _Broken(i18n_module._gettext.NullTranslations):
    """A catalog whose translator misspelt the placeholders and left a stray brace."""

    def gettext(self, message: str) -> str:
        return {"Missing right(s): {rights}": "Fehlende Rechte: {rechte}"}.get(message, "{")

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return "{anzahl} Dinge"


def test_a_translation_with_broken_placeholders_falls_back_to_the_source_text(caplog) -> None:
    tr = i18n_module.Translator("de", _Broken())
    assert tr.gettext("Missing right(s): {rights}", rights="View") == "Missing right(s): View"
    assert tr.gettext("Hello {user}", user="ann") == "Hello ann"
    assert tr.ngettext("{n} thing", "{n} things", 2) == "2 things"
    assert tr.ngettext("{n} thing", "{n} things", 1) == "1 thing"
    assert "Fehlende Rechte: {rechte}" in caplog.text


def test_a_long_accept_language_is_answered_but_not_remembered() -> None:
    localization = Localization()
    long = (*(f"x{i:03d}" for i in range(100)), "de")
    assert localization.negotiate(localization.core, long) == "de"
    assert localization.negotiate(localization.core, ("DE",)) == "de"
    assert all(len(key[2]) < 100 for key in localization._negotiated)
