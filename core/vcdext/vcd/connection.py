"""How the vCD client reaches vCD: base URLs, secrets, short failure reasons, the password
file (HTTP-level helpers; the vCloud vocabulary itself is :mod:`vcdext.vcloud`)."""

from __future__ import annotations

import http
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

from ..errors import ConfigError


def normalize_base_url(url: str) -> str:
    """``https://vcd.example.com/api/`` → ``https://vcd.example.com``.

    :raises ValueError: not an http(s) URL with a host, or one carrying a user or password
        (the message never repeats the URL, which could hold a password).
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL such as https://vcd.example.com")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain a user or password (use vcd.username, vcd.password)")
    path = parts.path.rstrip("/").removesuffix("/api").rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class Secret:
    """A string that never shows itself in a repr or a log line."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the one place that sends it."""
        return self._value

    def __repr__(self) -> str:
        return "'********'"

    __str__ = __repr__


def reason_of(exc: requests.RequestException) -> str:
    """A short human reason for a transport failure (``Connection refused``, ``timed out``)."""
    if isinstance(exc, requests.exceptions.SSLError):
        text = str(exc)
        m = re.search(r"certificate verify failed: ([^(')\"]+)", text)
        detail = f" ({m.group(1).strip()})" if m else ""
        return f"TLS handshake failed{detail}; check vcd.ca_bundle / vcd.verify_tls"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    text = str(exc)
    for pattern in (r"\[Errno -?\d+\] ([^'\")]+)", r"(Name or service not known)"):
        m = re.search(pattern, text)
        if m:
            return m.group(1).strip().rstrip(".")
    return type(exc).__name__


def phrase(response: requests.Response) -> str:
    """The reason phrase of a response (``Unauthorized``), from the status if vCD sent none."""
    if response.reason:
        return str(response.reason)
    try:
        return http.HTTPStatus(response.status_code).phrase
    except ValueError:
        return ""


def read_password_file(path: str, source: str) -> str:
    """The first line of ``vcd.password_file`` (``""`` when no file is configured).

    :raises ConfigError: the file cannot be read.
    """
    if not path:
        return ""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            "vcd.password_file", source, f"cannot read {path} ({exc.strerror})"
        ) from None
    lines = text.splitlines()
    return lines[0].rstrip("\r\n") if lines else ""
