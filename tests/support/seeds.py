"""Seed files for the local cell that tests share: a System administrator and two tenants."""

from __future__ import annotations


def two_tenants(*rights: str, vapps: bool = False) -> str:
    """A seed with ``administrator@System`` (every right), ``alice`` and ``bob`` of acme and
    ``carol`` of globex. alice and carol hold ``rights``, bob none; with ``vapps`` each tenant
    has a vDC holding one vApp (``acme-web``, ``globex-web``)."""
    held = ", ".join(f'"{r}"' for r in rights)

    def inventory(org: str) -> str:
        if not vapps:
            return ""
        return f'[[orgs.vdcs]]\nname = "{org}-vdc"\n[[orgs.vdcs.vapps]]\nname = "{org}-web"\n'

    return f"""
[[orgs]]
name = "System"
[[orgs.users]]
name = "administrator"
password = "vmware"
rights = ["*"]
[[orgs]]
name = "acme"
[[orgs.users]]
name = "alice"
password = "vmware"
rights = [{held}]
[[orgs.users]]
name = "bob"
password = "vmware"
{inventory("acme")}[[orgs]]
name = "globex"
[[orgs.users]]
name = "carol"
password = "vmware"
rights = [{held}]
{inventory("globex")}"""
