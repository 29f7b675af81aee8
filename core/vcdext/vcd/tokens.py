"""The extension tokens of MQTT extensions: one JSON file, mode 0600, never logged.

vCD shows an extension token once, in the answer to ``POST /cloudapi/1.0.0/tokens``; the
registration stores it here (``mqtt.token_file``) and the MQTT transport logs in to vCD's
broker with it. The file maps extension ids (``urn:vcloud:extension-api:...``) to tokens.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import ConfigError

_KEY = "mqtt.token_file"


class TokenFile:
    """``mqtt.token_file``: read and write the tokens (the file is created with mode 0600)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path).expanduser()

    def __repr__(self) -> str:  # the path only, never a token
        return f"TokenFile({str(self.path)!r})"

    def read(self) -> dict[str, str]:
        """Extension id → token; empty when the file does not exist.

        :raises ConfigError: the file cannot be read or is not a JSON object of strings.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigError(_KEY, str(self.path), f"cannot be read ({exc.strerror})") from None
        try:
            doc = json.loads(text)
        except ValueError:
            raise ConfigError(_KEY, str(self.path), "is not a JSON object") from None
        if not isinstance(doc, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in doc.items()
        ):
            raise ConfigError(_KEY, str(self.path), "must map extension ids to token strings")
        return doc

    def store(self, extension_id: str, token: str) -> None:
        """Add or replace one token; the file is written whole, owner read/write only.

        :raises ConfigError: the file cannot be written.
        """
        self._write({**self.read(), extension_id: token})

    def discard(self, extension_id: str) -> None:
        """Forget the token of ``extension_id`` (its extension was deleted); no file, no change.

        :raises ConfigError: the file cannot be read or written.
        """
        tokens = self.read()
        if tokens.pop(extension_id, None) is not None:
            self._write(tokens)

    def _write(self, tokens: dict[str, str]) -> None:
        data = json.dumps(tokens, indent=2, sort_keys=True).encode("utf-8")
        partial = self.path.with_name(self.path.name + ".partial")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, data)
            finally:
                os.close(fd)
            os.replace(partial, self.path)
        except OSError as exc:
            raise ConfigError(_KEY, str(self.path), f"cannot be written ({exc.strerror})") from None
