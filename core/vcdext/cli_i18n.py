"""``vcdext i18n``: the translators' workflow on babel's frontend, the catalog check and vCD
localization bundles.

::

    vcdext i18n extract [--plugin NAME]      sources → <domain>.pot (Python and templates)
    vcdext i18n init -l de [--plugin NAME]   a new <lang>/LC_MESSAGES/<domain>.po
    vcdext i18n update [--plugin NAME]       merge the .pot into every .po
    vcdext i18n compile [--plugin NAME]      .po → .mo (only for packages shipping .mo)
    vcdext i18n check [--plugin NAME] [PATH ...]
    vcdext i18n bundle PLUGIN [-o FILE]      the zip registration uploads to vCD

Without ``--plugin`` the first four work on the core's catalogs (``locales/`` of the source
checkout); ``check`` and ``compile`` work on the core's and every installed plugin's.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from babel.messages import frontend
from babel.messages.catalog import Catalog, Message

from .app import create_runtime
from .errors import ConfigError, VcdExtError
from .i18n import (
    BUNDLE_CONTEXT,
    Domain,
    core_domain,
    package_domain,
    placeholders,
    read_catalog,
)
from .plugins import installed_entry_points
from .settings import Settings
from .vcd.bundle import make_bundle

#: babel's extraction methods: Python (with vcdext's ``bundle_key``) and jinja2 templates.
_MAPPING = """\
[vcdext.i18n._extract_python: **.py]
[jinja2.ext.babel_extract: templates/**]
"""
#: Extra gettext keywords (babel's defaults stay): ``bundle_key(key, text)``.
_KEYWORDS = "bundle_key:1,2"


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``i18n`` and its subcommands to the ``vcdext`` subcommands."""
    i18n = sub.add_parser(
        "i18n",
        parents=[common],
        help="translation catalogs and vCD localization bundles",
        description="Extract messages, create, update, compile and check gettext catalogs; "
        "build a plugin's vCD localization bundle. Without --plugin, the core's catalogs "
        "(locales/ of the source checkout).",
    )
    commands = i18n.add_subparsers(dest="i18n_command", metavar="SUBCOMMAND")

    def command(name: str, help: str, handler: Any) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = commands.add_parser(
            name, parents=[common], help=help, description=help
        )
        parser.set_defaults(handler=handler)
        return parser

    def plugin_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--plugin", metavar="NAME", help="a plugin's catalogs, not the core's")

    plugin_option(
        command("extract", "write the .pot from the Python sources and templates", _extract)
    )
    init = command("init", "start the catalog of a new language from the .pot", _init)
    plugin_option(init)
    init.add_argument("-l", "--locale", required=True, help="language code, e.g. de or pt_BR")
    plugin_option(command("update", "merge the .pot into every language's .po", _update))
    plugin_option(command("compile", "compile .po files to .mo (for .mo-only packages)", _compile))
    check = command(
        "check",
        "report missing, fuzzy and obsolete entries and lost placeholders; exit 1 if any",
        _check,
    )
    plugin_option(check)
    check.add_argument(
        "paths", nargs="*", metavar="PATH", help=".po files or catalog folders to check instead"
    )
    bundle = command("bundle", "build a plugin's vCD localization bundle (zip)", _bundle)
    bundle.add_argument("plugin", metavar="PLUGIN", help="the plugin's name")
    bundle.add_argument(
        "-o", "--output", metavar="FILE", help="where to write the zip (default: <namespace>.zip)"
    )


# -- which catalogs -------------------------------------------------------------------------


def _plugin_domain(name: str) -> Domain:
    entry = installed_entry_points().get(name)
    if entry is None:
        have = ", ".join(sorted(installed_entry_points())) or "none"
        raise VcdExtError(f"no installed plugin {name!r} (installed: {have})")
    return package_domain(entry.module.split(".", 1)[0])


def _domain(args: argparse.Namespace) -> Domain:
    domain = _plugin_domain(args.plugin) if args.plugin else core_domain()
    if domain.directory is None:
        raise VcdExtError(f"{domain.name}: cannot find the package's folder")
    return domain


def _all_domains(args: argparse.Namespace) -> list[Domain]:
    if args.plugin:
        return [_domain(args)]
    domains = [core_domain()]
    for name in sorted(installed_entry_points()):
        try:
            domain = _plugin_domain(name)
        except VcdExtError:
            continue
        if domain.directory is not None and domain.directory.is_dir():
            domains.append(domain)
    return domains


def _source_dir(domain: Domain) -> Path:
    if domain.package is None:  # the core
        return Path(__file__).resolve().parent
    assert domain.directory is not None
    return domain.directory.parent


def _run(command: type[Any], **options: Any) -> None:
    command = command()
    command.initialize_options()
    for key, value in options.items():
        setattr(command, key, value)
    command.finalize_options()
    command.run()


def _pot(domain: Domain) -> Path:
    pot = domain.pot_file
    assert pot is not None
    if not pot.is_file():
        raise VcdExtError(f"{pot} does not exist; run `vcdext i18n extract` first")
    return pot


# -- the commands ---------------------------------------------------------------------------


def _quiet_babel() -> None:
    logging.getLogger("babel").setLevel(logging.WARNING)


def _extract(args: argparse.Namespace, settings: Settings) -> int:
    domain = _domain(args)
    assert domain.directory is not None
    domain.directory.mkdir(parents=True, exist_ok=True)
    _quiet_babel()
    source = _source_dir(domain)
    cwd = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp:
        mapping = Path(tmp) / "mapping.cfg"
        mapping.write_text(_MAPPING)
        os.chdir(source.parent)  # locations relative to it: vcdext_hello/plugin.py
        try:
            _extract_into(domain, source.name, mapping)
        finally:
            os.chdir(cwd)
    count = len(read_catalog(_pot(domain)))
    print(f"{domain.pot_file}: {count} message{'s' if count != 1 else ''}")
    return 0


def _extract_into(domain: Domain, source: str, mapping: Path) -> None:
    _run(
        frontend.ExtractMessages,
        input_paths=source,
        output_file=str(domain.pot_file),
        mapping_file=str(mapping),
        keywords=_KEYWORDS,
        add_comments="TRANSLATORS:",
        include_lineno=False,
        sort_by_file=True,
        project=domain.name,
        version="",
        width=100,
        copyright_holder="the vcdext authors",
        msgid_bugs_address="",
    )


def _init(args: argparse.Namespace, settings: Settings) -> int:
    domain = _domain(args)
    po = domain.po_file(args.locale)
    assert po is not None
    if po.exists():
        raise VcdExtError(f"{po} exists already; use `vcdext i18n update`")
    _quiet_babel()
    _run(
        frontend.InitCatalog,
        input_file=str(_pot(domain)),
        output_dir=str(domain.directory),
        locale=args.locale,
        domain=domain.name,
        width=100,
    )
    print(f"created {po}")
    return 0


def _update(args: argparse.Namespace, settings: Settings) -> int:
    domain = _domain(args)
    if not domain.catalog_locales():
        print(f"{domain.name}: no catalogs yet; start one with `vcdext i18n init -l LANG`")
        return 0
    _quiet_babel()
    _run(
        frontend.UpdateCatalog,
        input_file=str(_pot(domain)),
        output_dir=str(domain.directory),
        domain=domain.name,
        width=100,
    )
    for locale in domain.catalog_locales():
        print(f"updated {domain.po_file(locale)}")
    return 0


def _compile(args: argparse.Namespace, settings: Settings) -> int:
    _quiet_babel()
    for domain in _all_domains(args):
        for locale in domain.catalog_locales():
            po = domain.po_file(locale)
            assert po is not None
            if not po.is_file():
                continue
            _run(
                frontend.CompileCatalog,
                input_file=str(po),
                output_file=str(po.with_suffix(".mo")),
                locale=locale,
                domain=domain.name,
            )
            print(f"compiled {po.with_suffix('.mo')}")
    return 0


@dataclass(frozen=True)
class Problem:
    """One finding of ``vcdext i18n check``."""

    path: Path
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.kind}: {self.message}"


def _label(message: Message) -> str:
    text = message.id if isinstance(message.id, str) else message.id[0]
    context = f"[{message.context}] " if message.context else ""
    return f"{context}{text!r}"


def _strings(message: Message) -> list[str]:
    if isinstance(message.string, str):
        return [message.string]
    return list(message.string or ())


def _lost(message: Message) -> str | None:
    """Which placeholders the translation lost or invented, or ``None``."""
    ids = [message.id] if isinstance(message.id, str) else list(message.id)
    strings = _strings(message)
    strings = [s for s in strings if s]
    if not strings:
        return None
    wanted = set().union(*(placeholders(i) for i in ids))
    found = [placeholders(s) for s in strings]
    invented = set().union(*found) - wanted
    # A plural form may drop {n} ("eine Datei"), but never the others.
    lost = wanted - found[0] if len(ids) == 1 else (wanted - {"n"}) - set().union(*found)
    parts = []
    if lost:
        parts.append("lost " + ", ".join("{" + p + "}" for p in sorted(lost)))
    if invented:
        parts.append("unknown " + ", ".join("{" + p + "}" for p in sorted(invented)))
    return "; ".join(parts) or None


def check_catalog(po: Path, template: Catalog | None = None) -> list[Problem]:
    """Every problem of one ``.po`` file (against its ``.pot``, when given)."""
    locale = po.parent.parent.name
    try:
        catalog = read_catalog(po, locale)
    except Exception as exc:  # babel raises plain errors on broken syntax
        return [Problem(po, "unreadable", str(exc))]
    problems: list[Problem] = []
    for message in catalog:
        if not message.id:
            continue
        strings = _strings(message)
        if message.fuzzy:
            problems.append(Problem(po, "fuzzy", _label(message)))
        elif not all(strings):
            problems.append(Problem(po, "missing", _label(message)))
        lost = _lost(message)
        if lost:
            problems.append(Problem(po, "placeholder", f"{_label(message)}: {lost}"))
    for message in catalog.obsolete.values():
        problems.append(Problem(po, "obsolete", _label(message)))
    if template is not None:
        for message in template:
            if message.id and catalog.get(message.id, message.context) is None:
                problems.append(Problem(po, "missing", f"{_label(message)} (not in the .po)"))
    return problems


def check_domain(domain: Domain) -> tuple[int, list[Problem]]:
    """``(catalogs checked, problems)`` of every ``.po`` of ``domain``."""
    pot = domain.pot_file
    template = read_catalog(pot) if pot is not None and pot.is_file() else None
    problems: list[Problem] = []
    files = [domain.po_file(locale) for locale in domain.catalog_locales()]
    checked = [po for po in files if po is not None and po.is_file()]
    for po in checked:
        problems += check_catalog(po, template)
    return len(checked), problems


def _paths(paths: Iterable[str]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(path.rglob("*.po"))
        elif path.is_file():
            yield path
        else:
            raise VcdExtError(f"{path}: no such file or folder")


def _check(args: argparse.Namespace, settings: Settings) -> int:
    problems: list[Problem] = []
    count = 0
    if args.paths:
        for po in _paths(args.paths):
            pot = po.parent.parent.parent / f"{po.stem}.pot"
            problems += check_catalog(po, read_catalog(pot) if pot.is_file() else None)
            count += 1
    else:
        for domain in _all_domains(args):
            checked, found = check_domain(domain)
            count += checked
            problems += found
    for problem in problems:
        print(problem)
    noun = f"{count} catalog{'s' if count != 1 else ''}"
    if problems:
        print(f"{len(problems)} problem(s) in {noun}", file=sys.stderr)
        return 1
    print(f"{noun} checked: complete, no fuzzy or obsolete entries, placeholders intact")
    return 0


def _bundle(args: argparse.Namespace, settings: Settings) -> int:
    runtime = create_runtime(settings)
    services = runtime.registry.services
    if args.plugin not in services:
        have = ", ".join(sorted(services)) or "none"
        raise ConfigError(
            "plugins.enabled",
            settings.source_of("plugins.enabled"),
            f"no enabled plugin {args.plugin!r} declares a service (with services: {have})",
        )
    messages = runtime.bundle_messages()[args.plugin]
    try:
        bundle = make_bundle(messages)
    except ValueError as exc:
        raise VcdExtError(f"{args.plugin}: {exc}") from None
    output = Path(args.output or f"{services[args.plugin].namespace}.zip")
    output.write_bytes(bundle.data)
    keys = len(messages[min(messages)])
    print(
        f"{output}: {', '.join(bundle.locales)}; {keys} key{'s' if keys != 1 else ''} each "
        f"(sha256 {bundle.digest})"
    )
    return 0


__all__ = ["BUNDLE_CONTEXT", "Problem", "add_commands", "check_catalog", "check_domain"]
