"""``vcdext i18n``: extract, init, update, compile, check and bundle."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import vcdext_hello
from vcdext import cli_i18n
from vcdext.cli import main
from vcdext.i18n import Domain, core_domain, read_catalog
from vcdext.vcloud.bundle import read_bundle

HELLO = Path(vcdext_hello.__file__).parent
HELLO_DE = HELLO / "locales" / "de" / "LC_MESSAGES" / "vcdext_hello.po"


def test_check_passes_on_the_shipped_catalogs(capsys):
    assert main(["i18n", "check"]) == 0
    out = capsys.readouterr().out
    assert "catalogs checked: complete" in out


def _seed(tmp_path: Path, old: str, new: str) -> Path:
    folder = tmp_path / "locales" / "de" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    po = folder / "vcdext_hello.po"
    text = HELLO_DE.read_text(encoding="utf-8")
    assert old in text
    po.write_text(text.replace(old, new), encoding="utf-8")
    return po


def test_check_fails_on_a_lost_placeholder(tmp_path, capsys):
    po = _seed(tmp_path, 'msgstr "Hallo, {user}!"', 'msgstr "Hallo!"')
    assert main(["i18n", "check", str(po)]) == 1
    captured = capsys.readouterr()
    assert f"{po}: placeholder: 'Hello, {{user}}!': lost {{user}}" in captured.out
    assert "1 problem(s) in 1 catalog" in captured.err


def test_check_fails_on_an_invented_placeholder(tmp_path, capsys):
    _seed(tmp_path, 'msgstr "Hallo, {user}!"', 'msgstr "Hallo, {benutzer}!"')
    assert main(["i18n", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "lost {user}; unknown {benutzer}" in out


def test_check_reports_missing_fuzzy_and_obsolete_entries(tmp_path, capsys):
    po = _seed(tmp_path, 'msgstr "Hallo, {user}!"', 'msgstr ""')
    text = po.read_text(encoding="utf-8")
    text = text.replace(
        'msgid "Hello, organization {org}!"', '#, fuzzy\nmsgid "Hello, organization {org}!"'
    )
    text += '\n#~ msgid "Goodbye"\n#~ msgstr "Tschüss"\n'
    po.write_text(text, encoding="utf-8")
    assert main(["i18n", "check", str(po)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert f"{po}: missing: 'Hello, {{user}}!'" in lines
    assert f"{po}: fuzzy: 'Hello, organization {{org}}!'" in lines
    assert f"{po}: obsolete: 'Goodbye'" in lines


def test_check_compares_with_the_template(tmp_path, capsys):
    (tmp_path / "locales").mkdir()
    pot = HELLO / "locales" / "vcdext_hello.pot"
    shutil.copy(pot, tmp_path / "locales" / "vcdext_hello.pot")
    po = _seed(tmp_path, 'msgid "Hello, {user}!"\nmsgstr "Hallo, {user}!"\n', "")
    assert main(["i18n", "check", str(po)]) == 1
    assert "missing: 'Hello, {user}!' (not in the .po)" in capsys.readouterr().out


@pytest.fixture
def hello_copy(tmp_path, monkeypatch) -> Domain:
    """hello's package copied without catalogs; ``--plugin hello`` works on the copy."""
    package = tmp_path / "vcdext_hello"
    shutil.copytree(HELLO, package, ignore=shutil.ignore_patterns("locales", "__pycache__"))
    domain = Domain("vcdext_hello", package / "locales", "vcdext_hello")
    monkeypatch.setattr(cli_i18n, "_plugin_domain", lambda name: domain)
    return domain


def test_extract_init_update_compile_round_trip(hello_copy, capsys):
    assert main(["i18n", "extract", "--plugin", "hello"]) == 0
    pot = read_catalog(hello_copy.pot_file)
    shipped = read_catalog(HELLO / "locales" / "vcdext_hello.pot")
    assert {(m.context, m.id) for m in pot} == {(m.context, m.id) for m in shipped}
    # from the Python source and from templates/greeting.xml
    (entry,) = [m for m in pot if m.id == "Hello, {user}!"]
    assert {path for path, _ in entry.locations} == {
        "vcdext_hello/plugin.py",
        "vcdext_hello/templates/greeting.xml",
    }
    bundle = pot.get("View Org Greeting", "vcd-bundle:RIGHT_VIEW_ORG_GREETING")
    assert bundle is not None

    assert main(["i18n", "init", "--plugin", "hello", "-l", "de"]) == 0
    assert main(["i18n", "init", "--plugin", "hello", "-l", "de"]) == 2  # exists already
    assert main(["i18n", "check", "--plugin", "hello"]) == 1  # nothing translated yet
    capsys.readouterr()

    po = hello_copy.po_file("de")
    po.write_text(
        po.read_text().replace(
            'msgid "Hello, {user}!"\nmsgstr ""', 'msgid "Hello, {user}!"\nmsgstr "Hallo, {user}!"'
        ),
        encoding="utf-8",
    )
    assert main(["i18n", "update", "--plugin", "hello"]) == 0
    assert read_catalog(po, "de").get("Hello, {user}!").string == "Hallo, {user}!"

    assert main(["i18n", "compile", "--plugin", "hello"]) == 0
    assert po.with_suffix(".mo").is_file()


def test_the_core_catalog_holds_every_message_the_core_marks(tmp_path, monkeypatch, capsys):
    domain = Domain("vcdext", tmp_path / "locales")
    monkeypatch.setattr(cli_i18n, "core_domain", lambda: domain)
    assert main(["i18n", "extract"]) == 0
    extracted = {m.id for m in read_catalog(domain.pot_file) if m.id}
    shipped = {m.id for m in read_catalog(core_domain().pot_file) if m.id}
    assert extracted == shipped
    assert "No resource at {path}" in extracted


def test_bundle_writes_the_zip_vcd_takes(tmp_path, capsys):
    output = tmp_path / "hello.zip"
    assert main(["i18n", "bundle", "hello", "-o", str(output)]) == 0
    assert "de_DE, en_US, fr_FR" in capsys.readouterr().out
    bundle = read_bundle(output.read_bytes())
    assert bundle["de_DE"] == {
        "io.vcdext.hello": "Hallo-Welt-Dienst",
        "RIGHT_VIEW_ORG_GREETING": "Gruß der Organisation anzeigen",
    }
    assert bundle["en_US"]["io.vcdext.hello"] == "Hello World Service"


def test_bundle_of_an_unknown_plugin_is_an_error(capsys):
    assert main(["i18n", "bundle", "nope"]) == 2
    assert "no enabled plugin 'nope'" in capsys.readouterr().err


def test_the_backup_bundle_carries_the_german_progress_text(tmp_path, capsys):
    import vcdext_backup

    output = tmp_path / "backup.zip"
    assert main(["i18n", "bundle", "backup", "-o", str(output)]) == 0
    bundle = read_bundle(output.read_bytes())
    assert sorted(bundle) == ["de_DE", "en_US", "fr_FR"]
    german = read_catalog(
        Path(vcdext_backup.__file__).parent / "locales/de/LC_MESSAGES/vcdext_backup.po", "de"
    ).get("Backing up vApp {resourceName}", "vcd-bundle:backupInProgress_PROGRESS")
    assert german is not None
    progress = bundle["de_DE"]["backupInProgress_PROGRESS"]
    assert progress == german.string == "vApp {resourceName} wird gesichert"
    assert bundle["en_US"]["backupInProgress_PROGRESS"] == "Backing up vApp {resourceName}"
    assert bundle["fr_FR"]["FAILED.backupComplete"] == (
        "Échec de la sauvegarde de la vApp {resourceName}"
    )
    assert set(bundle["de_DE"]) == {
        "backupInProgress",
        "backupInProgress_PROGRESS",
        "backupComplete",
        "FAILED.backupComplete",
        "org.example.vcd.backup",
    }
