"""Localization: gettext catalogs per distribution, the locale of each request, templates and
the texts of vCD localization bundles.

* **One gettext domain per distribution.** The core's domain is ``vcdext``; its sources are
  the top-level ``locales/`` folder of the source checkout (``vcdext.pot``,
  ``<lang>/LC_MESSAGES/vcdext.po``), which ``core/vcdext/locales`` links to, so that a built
  package carries them as ``vcdext/locales``. A
  plugin's domain is its top-level package name (``vcdext_hello``), its catalogs
  ``<package>/locales/<lang>/LC_MESSAGES/<package>.po``.
* **Catalogs are compiled when they are loaded**, from the ``.po`` sources with babel (fuzzy
  entries left out), once per (domain, locale) and runtime, never per request. A ``.mo``
  (``vcdext i18n compile``) is read only where no ``.po`` is shipped. So there is no build step
  and never a stale ``.mo``.
* **The locale travels with the request**: :meth:`Localization.translator` negotiates the
  ``Accept-Language`` tags against the locales a domain has (``en``, the language of every
  msgid, always exists) and hands back a :class:`Translator`: gettext and friends with
  ``{name}`` placeholders, babel's date and number formats, and jinja2 templates from the
  plugin's package (``<package>/templates``, autoescape on, the i18n extension installed).
* **vCD bundle keys travel as message contexts** ``vcd-bundle:<key>``: the msgid is the
  English text, the msgstr the translation (see :func:`bundle_key` and
  :meth:`Localization.bundle_messages`).
"""

from __future__ import annotations

import gettext as _gettext
import io
import logging
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from babel import Locale, UnknownLocaleError, dates, numbers
from babel.core import get_global, negotiate_locale
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

if TYPE_CHECKING:  # jinja2 is imported when a plugin with templates first needs them
    import jinja2

#: The core's gettext domain.
CORE_DOMAIN = "vcdext"
#: The language of every msgid; the locale when nothing else matches.
SOURCE_LOCALE = "en"
#: Distinct (domain, Accept-Language) choices remembered before the memory starts afresh.
_NEGOTIATED_MAX = 1024
#: The longest Accept-Language (its tags' total length) whose choice is remembered.
_NEGOTIATED_KEY_MAX = 256
#: The message context prefix of vCD bundle texts: ``msgctxt "vcd-bundle:backupInProgress"``.
BUNDLE_CONTEXT = "vcd-bundle:"
#: Where a plugin keeps its templates, inside its package.
TEMPLATES = "templates"
#: Where a distribution keeps its catalogs, inside its package.
LOCALES = "locales"

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}|%\(([A-Za-z_][A-Za-z0-9_]*)\)[sdif]")


def bundle_key(key: str, text: str) -> str:
    """Mark ``text`` as the English text of the vCD bundle ``key`` and return ``key``.

    ``vcdext i18n extract`` turns each call into the catalog entry ``msgctxt
    "vcd-bundle:<key>"``, ``msgid "<text>"``; the bundle vcdext uploads to vCD maps ``key``
    to each locale's translation. Use the returned key where vCD expects it::

        OPERATION = bundle_key("backupInProgress", "Backup of {resourceName}")
        bundle_key("backupInProgress_PROGRESS", "Backing up {resourceName}")
    """
    return key


def N_(message: str) -> str:
    """Mark ``message`` for extraction without translating it (translate it later)."""
    return message


def placeholders(text: str) -> set[str]:
    """The ``{name}`` and ``%(name)s`` placeholders in ``text``."""
    return {a or b for a, b in _PLACEHOLDER.findall(text)}


def bundle_locale(locale: str) -> str:
    """The vCD bundle file name of a catalog locale: ``de`` → ``de_DE``, ``en`` → ``en_US``;
    a locale with a territory (``pt_BR``) stays as it is."""
    parsed = Locale.parse(locale)
    if parsed.territory:
        return str(parsed)
    likely: Mapping[str, str] = get_global("likely_subtags")
    full = Locale.parse(likely.get(parsed.language, parsed.language))
    return f"{parsed.language}_{full.territory}" if full.territory else parsed.language


# -- domains ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Domain:
    """One gettext domain: its name, the folder of its catalogs, the package of its
    templates (``None``: none)."""

    name: str
    directory: Path | None
    package: str | None = None

    def po_file(self, locale: str) -> Path | None:
        """The ``.po`` of ``locale`` (``None`` without a catalog folder)."""
        if self.directory is None:
            return None
        return self.directory / locale / "LC_MESSAGES" / f"{self.name}.po"

    @property
    def pot_file(self) -> Path | None:
        return None if self.directory is None else self.directory / f"{self.name}.pot"

    def catalog_locales(self) -> tuple[str, ...]:
        """Locales with a catalog (``.po`` or ``.mo``), sorted."""
        if self.directory is None or not self.directory.is_dir():
            return ()
        found = {
            path.parent.parent.name
            for pattern in (f"*/LC_MESSAGES/{self.name}.po", f"*/LC_MESSAGES/{self.name}.mo")
            for path in self.directory.glob(pattern)
        }
        return tuple(sorted(found))

    def locales(self) -> tuple[str, ...]:
        """Every locale a request can get: the catalogs' and ``en``."""
        return tuple(sorted({SOURCE_LOCALE, *self.catalog_locales()}))


def package_of(plugin: object) -> str:
    """The top-level package a plugin object comes from (a module, or an object's class)."""
    name = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__module__
    return name.split(".", 1)[0]


def package_domain(package: str) -> Domain:
    """The domain of a distribution's top-level ``package``: named after it, its catalogs in
    ``<package>/locales``."""
    import importlib.util

    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    directory = Path(locations[0]) / LOCALES if locations else None
    return Domain(package, directory, package)


def core_domain() -> Domain:
    """The core's domain: ``vcdext/locales``, in a source checkout a link to the top-level
    ``locales/`` folder (so a built package carries the catalogs too)."""
    return Domain(CORE_DOMAIN, (Path(__file__).parent / LOCALES).resolve())


# -- loading ----------------------------------------------------------------------------------


def read_catalog(path: Path, locale: str | None = None) -> Catalog:
    """A ``.po`` or ``.pot`` file as a babel catalog."""
    with path.open("rb") as fileobj:
        return read_po(fileobj, locale=locale, abort_invalid=False)


def _load(domain: Domain, locale: str) -> _gettext.NullTranslations:
    po = domain.po_file(locale)
    if po is None:
        return _gettext.NullTranslations()
    if po.is_file():
        buffer = io.BytesIO()
        write_mo(buffer, read_catalog(po, locale), use_fuzzy=False)
        buffer.seek(0)
        return _gettext.GNUTranslations(buffer)
    mo = po.with_suffix(".mo")
    if mo.is_file():
        with mo.open("rb") as fileobj:
            return _gettext.GNUTranslations(fileobj)
    return _gettext.NullTranslations()


log = logging.getLogger(__name__)


def _format(text: str, params: Mapping[str, Any], source: str) -> str:
    """``text`` (a translation of ``source``) with its placeholders filled; ``source`` filled
    when the translation's placeholders do not fit (a catalog error must not fail a reply)."""
    if not params:
        return text
    try:
        return text.format(**params)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        if text == source:
            raise
        log.warning(
            "the translation %r of %r does not fit its placeholders (%r)", text, source, exc
        )
        return source.format(**params)


class Translator:
    """gettext, date and number formats and templates for one domain in one locale.

    Messages use ``{name}`` placeholders, filled from keyword arguments:
    ``gettext("Hello, {user}!", user=user)``. Without arguments the text is returned as is.
    """

    def __init__(
        self,
        locale: str,
        translations: _gettext.NullTranslations,
        templates: jinja2.Environment | None = None,
    ) -> None:
        self.locale = locale
        self.babel_locale = Locale.parse(locale)
        self._t = translations
        self._templates = templates

    def __repr__(self) -> str:
        return f"Translator({self.locale!r})"

    def gettext(self, message: str, /, **params: Any) -> str:
        """``message`` in this locale, placeholders filled from ``params``."""
        return _format(self._t.gettext(message), params, message)

    def ngettext(self, singular: str, plural: str, n: int, /, **params: Any) -> str:
        """The singular or plural form for ``n`` (``{n}`` is filled with it too)."""
        source = singular if n == 1 else plural
        return _format(self._t.ngettext(singular, plural, n), {"n": n, **params}, source)

    def pgettext(self, context: str, message: str, /, **params: Any) -> str:
        """``message`` in ``context`` (``msgctxt``) in this locale."""
        return _format(self._t.pgettext(context, message), params, message)

    def npgettext(self, context: str, singular: str, plural: str, n: int, /, **params: Any) -> str:
        """:meth:`ngettext` in ``context``."""
        source = singular if n == 1 else plural
        return _format(self._t.npgettext(context, singular, plural, n), {"n": n, **params}, source)

    def format_date(self, value: date | datetime, format: str = "medium") -> str:
        """A date as this locale writes it (babel; ``short``, ``medium``, ``long``, ``full``
        or a pattern)."""
        return dates.format_date(value, format=format, locale=self.babel_locale)

    def format_datetime(self, value: datetime, format: str = "medium") -> str:
        """A date and time as this locale writes it (babel)."""
        return dates.format_datetime(value, format=format, locale=self.babel_locale)

    def format_time(self, value: time | datetime, format: str = "medium") -> str:
        """A time as this locale writes it (babel)."""
        return dates.format_time(value, format=format, locale=self.babel_locale)

    def format_number(self, value: float | int, format: str | None = None) -> str:
        """A number with this locale's separators (babel's ``format_decimal``)."""
        return numbers.format_decimal(value, format=format, locale=self.babel_locale)

    def format_percent(self, value: float, format: str | None = None) -> str:
        """A fraction as a percentage (``0.25`` → ``25 %`` in German)."""
        return numbers.format_percent(value, format=format, locale=self.babel_locale)

    def render(self, template: str, /, **values: Any) -> str:
        """Render ``template`` from the plugin's ``templates/`` folder in this locale.

        Autoescape is on; ``_("…", name=value)``, ``gettext``, ``ngettext``, ``pgettext``
        and ``{% trans %}`` blocks translate.

        :raises LookupError: the plugin has no such template (or no templates at all).
        """
        if self._templates is None:
            raise LookupError(f"no templates folder to render {template!r} from")
        import jinja2

        try:
            return self._templates.get_template(template).render(**values)
        except jinja2.TemplateNotFound:
            raise LookupError(f"template {template!r} not found") from None


def _environment(package: str, translations: _gettext.NullTranslations) -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader(package, TEMPLATES),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        # A plugin's templates are part of its installed package: checking their mtime on
        # every render was a stat() per request, as costly as the rest of the dispatch.
        auto_reload=False,
    )

    def gettext(message: str, **params: Any) -> str:
        return _format(translations.gettext(message), params, message)

    def ngettext(singular: str, plural: str, n: int, **params: Any) -> str:
        source = singular if n == 1 else plural
        return _format(translations.ngettext(singular, plural, n), params, source)

    def pgettext(context: str, message: str, **params: Any) -> str:
        return _format(translations.pgettext(context, message), params, message)

    def npgettext(context: str, singular: str, plural: str, n: int, **params: Any) -> str:
        source = singular if n == 1 else plural
        return _format(translations.npgettext(context, singular, plural, n), params, source)

    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext, ngettext, newstyle=False, pgettext=pgettext, npgettext=npgettext
    )
    return env


# -- the runtime's catalogs -------------------------------------------------------------------


@dataclass
class Localization:
    """The catalogs of one runtime: the core's and each plugin's, loaded once per (domain,
    locale) and shared by every request.

    :param plugins: plugin name → its :class:`Domain`.
    """

    plugins: Mapping[str, Domain] = field(default_factory=dict)
    core: Domain = field(default_factory=core_domain)
    _cache: dict[tuple[str, Path | None, str], Translator] = field(
        default_factory=dict, init=False, repr=False
    )
    _locales: dict[tuple[str, Path | None], tuple[str, ...]] = field(
        default_factory=dict, init=False, repr=False
    )
    _negotiated: dict[tuple[str, Path | None, tuple[str, ...]], str] = field(
        default_factory=dict, init=False, repr=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def of_plugins(cls, plugins: Iterable[tuple[str, object]]) -> Localization:
        """For ``(name, plugin object)`` pairs: each plugin's domain is its package's."""
        return cls({name: package_domain(package_of(obj)) for name, obj in plugins})

    def domain(self, plugin: str | None) -> Domain:
        """The plugin's domain; the core's for ``None`` or a plugin without one."""
        if plugin is None:
            return self.core
        return self.plugins.get(plugin) or Domain(plugin, None)

    def available(self, domain: Domain) -> tuple[str, ...]:
        """The locales ``domain`` has (``en`` always), read from disk once."""
        key = (domain.name, domain.directory)
        found = self._locales.get(key)
        if found is None:
            found = domain.locales()
            self._locales[key] = found
        return found

    def negotiate(self, domain: Domain, preferred: Sequence[str]) -> str:
        """The best of ``domain``'s locales for ``preferred`` (``Accept-Language`` tags, best
        first); ``en`` when none matches."""
        key = (domain.name, domain.directory, tuple(preferred))
        found = self._negotiated.get(key)
        if found is None:
            tags = [t.replace("-", "_") for t in preferred]
            available = self.available(domain)
            chosen = negotiate_locale(tags, available, sep="_") or SOURCE_LOCALE
            # babel answers in the caller's spelling ("DE"); the catalogs are found by ours.
            found = {a.lower(): a for a in available}.get(chosen.lower(), chosen)
            if sum(map(len, preferred)) <= _NEGOTIATED_KEY_MAX:  # long headers are not kept
                if len(self._negotiated) >= _NEGOTIATED_MAX:  # bounded: callers choose keys
                    self._negotiated.clear()
                self._negotiated[key] = found
        return found

    def translator(self, plugin: str | None, preferred: Sequence[str] = ()) -> Translator:
        """The plugin's (``None``: the core's) translator for the best locale of
        ``preferred``."""
        domain = self.domain(plugin)
        return self.translator_for(domain, self.negotiate(domain, preferred))

    def translator_for(self, domain: Domain, locale: str) -> Translator:
        """The translator of ``domain`` in exactly ``locale``, cached."""
        key = (domain.name, domain.directory, locale)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        with self._lock:
            cached = self._cache.get(key)
            if cached is None:
                translations = _load(domain, locale)
                env = (
                    _environment(domain.package, translations)
                    if domain.package and _has_templates(domain.package)
                    else None
                )
                try:
                    cached = Translator(locale, translations, env)
                except (ValueError, UnknownLocaleError):  # a folder babel knows no locale for
                    cached = Translator(SOURCE_LOCALE, _gettext.NullTranslations(), env)
                self._cache[key] = cached
        return cached

    def bundle_messages(
        self,
        plugin: str,
        *,
        namespace: str,
        name: str,
        rights: Iterable[tuple[str, str]] = (),
    ) -> dict[str, dict[str, str]]:
        """The vCD bundle texts of ``plugin``'s service: ``{en_US: {key: text}, de_DE: …}``.

        Keys come from the catalog entries with context ``vcd-bundle:<key>`` (English text =
        msgid); the service ``namespace`` (default text: ``name``) and each right's bundle
        key (``rights``: ``(bundle key, right name)``) are always there. Each locale file
        has every key: an untranslated or fuzzy one in English.
        """
        domain = self.domain(plugin)
        english: dict[str, str] = {namespace: name}
        english.update({key: right for key, right in rights if key})
        translated: dict[str, dict[str, str]] = {}
        sources = [(None, domain.pot_file)] + [
            (locale, domain.po_file(locale)) for locale in domain.catalog_locales()
        ]
        for locale, path in sources:
            if path is None or not path.is_file():
                continue
            for message in read_catalog(path, locale):
                context = message.context or ""
                if not context.startswith(BUNDLE_CONTEXT) or not isinstance(message.id, str):
                    continue
                key = context[len(BUNDLE_CONTEXT) :]
                english[key] = message.id
                if (
                    locale is not None
                    and isinstance(message.string, str)
                    and message.string
                    and not message.fuzzy
                ):
                    translated.setdefault(locale, {})[key] = message.string
        result = {bundle_locale(SOURCE_LOCALE): {**english, **translated.get(SOURCE_LOCALE, {})}}
        for locale, texts in sorted(translated.items()):
            if locale != SOURCE_LOCALE:
                result[bundle_locale(locale)] = {**english, **texts}
        return result


def _has_templates(package: str) -> bool:
    domain = package_domain(package)
    return domain.directory is not None and (domain.directory.parent / TEMPLATES).is_dir()


__all__ = [
    "BUNDLE_CONTEXT",
    "CORE_DOMAIN",
    "SOURCE_LOCALE",
    "Domain",
    "Localization",
    "Localized",
    "Translator",
    "bundle_key",
    "bundle_locale",
    "english",
    "placeholders",
]


def english() -> Translator:
    """A translator that leaves every message in English (no catalogs)."""
    return Translator(SOURCE_LOCALE, _gettext.NullTranslations())


class Localized:
    """What a request context offers handlers for the caller's locale: ``gettext`` and
    friends, babel's formats, templates; each delegates to ``self.translator``."""

    translator: Translator

    @property
    def locale(self) -> str:
        """The locale negotiated from ``Accept-Language`` (``en`` when nothing matched)."""
        return self.translator.locale

    def gettext(self, message: str, /, **params: Any) -> str:
        return self.translator.gettext(message, **params)

    def ngettext(self, singular: str, plural: str, n: int, /, **params: Any) -> str:
        return self.translator.ngettext(singular, plural, n, **params)

    def pgettext(self, context: str, message: str, /, **params: Any) -> str:
        return self.translator.pgettext(context, message, **params)

    def format_date(self, value: date | datetime, format: str = "medium") -> str:
        return self.translator.format_date(value, format)

    def format_datetime(self, value: datetime, format: str = "medium") -> str:
        return self.translator.format_datetime(value, format)

    def format_number(self, value: float | int, format: str | None = None) -> str:
        return self.translator.format_number(value, format)

    def render(self, template: str, /, **values: Any) -> str:
        return self.translator.render(template, **values)


def _extract_python(
    fileobj: Any, keywords: Any, comment_tags: Any, options: Any
) -> Iterable[tuple[Any, ...]]:
    """babel's Python extractor, with :func:`bundle_key` calls turned into ``pgettext``
    entries in the ``vcd-bundle:<key>`` context (``vcdext i18n extract`` uses it)."""
    from babel.messages.extract import extract_python

    for lineno, funcname, messages, comments in extract_python(
        fileobj, keywords, comment_tags, options
    ):
        if funcname != "bundle_key":
            yield lineno, funcname, messages, comments
        elif isinstance(messages, tuple) and len(messages) == 2 and all(messages):
            key, text = messages
            note = f"vCD bundle key {key} (keep every {{placeholder}})"
            yield lineno, "pgettext", (BUNDLE_CONTEXT + key, text), [*comments, note]
