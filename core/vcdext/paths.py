"""Path templates: parsing, matching, and the vCD API filter pattern they register.

A template is a path such as ``/api/org/{org_id}/backups`` or ``/api/vApp/vapp-{id}``.
``{name}`` matches the rest of one path segment (no ``/``), after an optional literal prefix
in that segment. From each template vcdext derives a ``java.util.regex`` ``UrlPattern`` for
vCD's API filter; see ``docs/protocol.md`` (API filters) for why it is written unanchored.
The runtime's operations and the local cell's routes use this one syntax. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Characters allowed in a literal part of a template (RFC 3986 pchar, without '%' escapes).
_LITERAL = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/]*")
# Characters that are special in java.util.regex (and in Python's re) outside a class.
_REGEX_SPECIAL = set(r"\.[]{}()<>*+-=!?^$|")
SEGMENT = "[^/]+"


def _escape(literal: str) -> str:
    # Backslash before a non-alphanumeric character is a literal in both Java and Python regex.
    return "".join("\\" + c if c in _REGEX_SPECIAL else c for c in literal)


@dataclass(frozen=True)
class PathTemplate:
    """A parsed path template."""

    template: str
    params: tuple[str, ...]
    #: Python regex with a named group per parameter, matched against the whole path.
    regex: re.Pattern[str] = field(compare=False, repr=False)
    #: Literal parts, used to order overlapping templates (more literal text wins).
    literal_length: int = field(compare=False, repr=False)

    @property
    def shape(self) -> str:
        """The template with parameter names erased: two templates of one shape collide."""
        return _PARAM.sub("{}", self.template)

    @property
    def url_pattern(self) -> str:
        """The ``java.util.regex`` pattern vCD matches request URIs against."""
        out, pos = [], 0
        for m in _PARAM.finditer(self.template):
            out.append(_escape(self.template[pos : m.start()]))
            out.append(SEGMENT)
            pos = m.end()
        out.append(_escape(self.template[pos:]))
        return "".join(out)

    def match(self, path: str) -> dict[str, str] | None:
        """The parameters if ``path`` matches this template, else ``None``."""
        m = self.regex.fullmatch(path)
        return m.groupdict() if m else None


def parse_template(template: str) -> PathTemplate:
    """Parse and validate a template; raises :class:`ValueError` with the reason."""
    if not template.startswith("/"):
        raise ValueError(f"path {template!r} must start with /")
    names: list[str] = []
    regex, pos = [], 0
    for m in _PARAM.finditer(template):
        literal = template[pos : m.start()]
        _check_literal(template, literal)
        if not literal or (m.end() < len(template) and template[m.end()] != "/"):
            raise ValueError(f"path {template!r}: a parameter must end its path segment")
        if m.group(1) in names:
            raise ValueError(f"path {template!r}: parameter {m.group(1)!r} appears twice")
        names.append(m.group(1))
        regex.append(re.escape(literal))
        regex.append(f"(?P<{m.group(1)}>{SEGMENT})")
        pos = m.end()
    tail = template[pos:]
    _check_literal(template, tail)
    regex.append(re.escape(tail))
    if "//" in template:
        raise ValueError(f"path {template!r} has an empty segment")
    literal_length = len(_PARAM.sub("", template))
    return PathTemplate(template, tuple(names), re.compile("".join(regex)), literal_length)


def _check_literal(template: str, literal: str) -> None:
    if "{" in literal or "}" in literal:
        raise ValueError(f"path {template!r}: braces must enclose a parameter name")
    if not _LITERAL.fullmatch(literal):
        bad = next(c for c in literal if not _LITERAL.fullmatch(c))
        raise ValueError(f"path {template!r}: character {bad!r} is not allowed in a path")
