"""The task examples in the docs run as written (docs/hello.md)."""

from __future__ import annotations

import re
import types
from pathlib import Path

from vcdext import Registrar, hookimpl
from vcdext.testing import FakeVcd, TestClient, make_runtime

DOCS = Path(__file__).resolve().parents[1] / "docs"


def python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.DOTALL)


def test_the_hello_task_example_runs_as_documented(assert_valid_vcd_xml):
    plugin_code, test_code = python_blocks("hello.md")
    module = types.ModuleType("hello_with_a_task")
    exec(compile(plugin_code, "docs/hello.md", "exec"), module.__dict__)

    @hookimpl
    def vcdext_register(registrar: Registrar) -> None:
        registrar.add_service(module.service)

    module.vcdext_register = vcdext_register
    exec(compile(test_code, "docs/hello.md", "exec"), {"my_plugin": module})

    vcd = FakeVcd()
    client = TestClient(make_runtime(module, vcd=vcd))
    reply = client.post("/api/hello/slow")
    assert_valid_vcd_xml(reply.body)
    (run,) = client.run_tasks()
    assert run.final.details == f"Hello, {client.user}!"
    for document in vcd.documents(run.id) + vcd.event_documents():
        assert_valid_vcd_xml(document)
