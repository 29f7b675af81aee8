"""The cell's users, organizations, rights and inventory: a TOML seed file, or the demo seed.

Seed file format (every key optional unless marked *required*)::

    # How the security context of a forwarded request lists the caller's rights:
    # "urn"  -> right URNs, urn:vcloud:right:<uuid> (default; see docs/local-cell.md)
    # "name" -> full right names, e.g. "{io.vcdext.hello}:View Org Greeting"
    rights_format = "urn"

    [[orgs]]
    name = "System"                # the system org; its users are system administrators
    [[orgs.users]]
    name = "administrator"         # required
    password = "vmware"            # required
    rights = ["*"]                 # "*" = every right the cell knows (registered or seeded)

    [[orgs]]
    name = "acme"                  # required, unique (case-insensitive)
    full_name = "Acme Corporation"  # default: the name
    id = "4e1c...-uuid"            # default: derived from the name, stable across restarts
    [[orgs.users]]
    name = "alice"
    password = "vmware"
    full_name = "Alice"
    rights = ["{io.vcdext.hello}:View Org Greeting"]   # full right names
    [[orgs.vdcs]]
    name = "acme-vdc"
    [[orgs.vdcs.vapps]]
    name = "acme-web"
    owner = "alice"                # a user of this org; default: no owner
    [[orgs.vdcs.vapps.vms]]
    name = "web-1"                 # required, unique in its vApp

Users, VDCs, vApps and VMs accept ``id`` (a UUID) too; without it the id is derived from the names
(UUID version 5), so URLs stay the same when the cell restarts. The ``System`` org always exists
(it is added when the file does not list it) and has vCD's fixed id
(``a93c9db9-7471-3192-8d09-a8f7eeda85f9``). A user of ``System`` is a system administrator.
"""

from __future__ import annotations

import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vcdext.context import SYSTEM_ORG_ID
from vcdext.errors import ConfigError
from vcdext.settings import REQUIRED, parse_table, read_toml, setting

#: The organization of system administrators.
SYSTEM_ORG = "System"
#: A right entry meaning "every right the cell knows".
ALL_RIGHTS = "*"
#: Accepted values of ``rights_format``.
RIGHTS_FORMATS = ("urn", "name")

# Namespace of the name-derived (version 5) UUIDs; any fixed UUID works.
_NAMESPACE = uuid.UUID("6f1f3c8e-2b7a-4c55-9a51-1d0c3a8a7e10")


@dataclass(frozen=True)
class Vm:
    """A virtual machine of a vApp (only its identity: it runs nothing)."""

    id: str
    name: str
    vapp_id: str


@dataclass(frozen=True)
class VApp:
    """A vApp of the inventory: its identity, its owner (a user id, or ``""``), its VMs."""

    id: str
    name: str
    vdc_id: str
    owner_id: str = ""
    vms: tuple[Vm, ...] = ()


@dataclass(frozen=True)
class Vdc:
    """An organization VDC of the inventory."""

    id: str
    name: str
    org_id: str
    vapps: tuple[VApp, ...] = ()


@dataclass(frozen=True)
class User:
    """A user who can log in; ``rights`` are full right names (or ``"*"``)."""

    id: str
    name: str
    password: str
    org_id: str
    full_name: str = ""
    rights: tuple[str, ...] = ()

    def __repr__(self) -> str:  # never show the password
        return f"User(name={self.name!r}, org_id={self.org_id!r}, rights={self.rights!r})"


@dataclass(frozen=True)
class Org:
    """An organization with its users and VDCs."""

    id: str
    name: str
    full_name: str
    users: tuple[User, ...] = ()
    vdcs: tuple[Vdc, ...] = ()

    @property
    def is_system(self) -> bool:
        """Whether this is the ``System`` org (its users are system administrators)."""
        return self.name.lower() == SYSTEM_ORG.lower()


@dataclass(frozen=True)
class Seed:
    """Everything the cell starts with."""

    orgs: tuple[Org, ...]
    rights_format: str = "urn"
    #: Where it came from: a file path or ``"demo"``.
    source: str = "demo"

    def org_named(self, name: str) -> Org | None:
        """The org called ``name`` (case-insensitive), if any."""
        return next((o for o in self.orgs if o.name.lower() == name.lower()), None)

    @property
    def users(self) -> tuple[User, ...]:
        """Every user of every org."""
        return tuple(u for o in self.orgs for u in o.users)

    @property
    def right_names(self) -> tuple[str, ...]:
        """Every right a user of the seed holds by name (``"*"`` excluded), sorted."""
        return tuple(sorted({r for u in self.users for r in u.rights if r != ALL_RIGHTS}))


#: The built-in seed: a system administrator and one org with a user holding the hello and
#: backup plugins' rights and one without them, and a vApp of each with VMs in it. Passwords are
#: printed by ``vcdext cell``.
DEMO_SEED_TOML = """
rights_format = "urn"

[[orgs]]
name = "System"
full_name = "System organization"
[[orgs.users]]
name = "administrator"
password = "vmware"
full_name = "System Administrator"
rights = ["*"]

[[orgs]]
name = "acme"
full_name = "Acme Corporation"
[[orgs.users]]
name = "alice"
password = "vmware"
full_name = "Alice (holds {io.vcdext.hello}:View Org Greeting and the backup rights)"
rights = [
    "{io.vcdext.hello}:View Org Greeting",
    "{org.example.vcd.backup}:View Backups",
    "{org.example.vcd.backup}:Create Backup",
    "{org.example.vcd.backup}:Delete Backup",
    # The same rights when the plugins are MQTT extensions: the cell names a right of an
    # extension after its vendor and name ({vendor.name}:Name).
    "{vcdext.hello}:View Org Greeting",
    "{Example.backup}:View Backups",
    "{Example.backup}:Create Backup",
    "{Example.backup}:Delete Backup",
]
[[orgs.users]]
name = "bob"
password = "vmware"
full_name = "Bob (no extension rights)"
rights = []
[[orgs.vdcs]]
name = "acme-vdc"
[[orgs.vdcs.vapps]]
name = "acme-web"
owner = "alice"
[[orgs.vdcs.vapps.vms]]
name = "web-1"
[[orgs.vdcs.vapps.vms]]
name = "web-2"
[[orgs.vdcs.vapps]]
name = "acme-db"
owner = "bob"
[[orgs.vdcs.vapps.vms]]
name = "db-1"
"""


def derived_id(*names: str) -> str:
    """A stable UUID for an object named by ``names`` (its kind and the names above it)."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(n.lower() for n in names)))


def demo_seed() -> Seed:
    """The built-in demo seed."""
    return parse_seed(tomllib.loads(DEMO_SEED_TOML), source="demo")


def load_seed(path: str | Path | None, *, source: str | None = None) -> Seed:
    """Read a seed file; ``None`` or ``""`` gives the demo seed. Raises :class:`ConfigError`.

    :param source: where ``path`` was given (a config file, ``environment VCDEXT_CELL_SEED``,
        ``--seed``): a file that cannot be read is reported against it.
    """
    if not path:
        return demo_seed()
    key = f"cell.seed ({path})" if source else "cell.seed"
    return parse_seed(read_toml(path, key, source=source, syntax_key="cell.seed"), source=str(path))


# -- the file's declared shape: one setting() per key, read by vcdext's settings validator --


def _name(value: str) -> str:
    value = value.strip()
    if not value or "@" in value or ":" in value:
        raise ValueError("must be non-empty and contain no '@' or ':'")
    return value


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValueError("expected a UUID") from None


def _non_empty(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


_ID = "A UUID; default: derived from the names, stable across restarts."


@dataclass(frozen=True, kw_only=True)
class _VmTable:
    name: str = setting(REQUIRED, "The VM's name, unique in its vApp.", check=_name)
    id: str | None = setting(None, _ID, check=_uuid)


@dataclass(frozen=True, kw_only=True)
class _VAppTable:
    name: str = setting(REQUIRED, "The vApp's name.", check=_name)
    id: str | None = setting(None, _ID, check=_uuid)
    owner: str = setting("", "A user of this org who owns the vApp (default: no owner).")
    vms: tuple[_VmTable, ...] = setting((), "The vApp's VMs ([[orgs.vdcs.vapps.vms]]).")


@dataclass(frozen=True, kw_only=True)
class _VdcTable:
    name: str = setting(REQUIRED, "The VDC's name.", check=_name)
    id: str | None = setting(None, _ID, check=_uuid)
    vapps: tuple[_VAppTable, ...] = setting((), "The VDC's vApps ([[orgs.vdcs.vapps]]).")


@dataclass(frozen=True, kw_only=True)
class _UserTable:
    name: str = setting(REQUIRED, "Login name (without @org).", check=_name)
    password: str = setting(REQUIRED, "Password.", secret=True, check=_non_empty)
    full_name: str | None = setting(None, "Display name; default: the name.")
    id: str | None = setting(None, _ID, check=_uuid)
    rights: tuple[str, ...] = setting((), 'Full right names, or "*" for every right.')


@dataclass(frozen=True, kw_only=True)
class _OrgTable:
    name: str = setting(REQUIRED, "The org's name, unique (case-insensitive).", check=_name)
    full_name: str | None = setting(None, "Display name; default: the name.")
    id: str | None = setting(None, _ID, check=_uuid)
    users: tuple[_UserTable, ...] = setting((), "The org's users ([[orgs.users]]).")
    vdcs: tuple[_VdcTable, ...] = setting((), "The org's VDCs ([[orgs.vdcs]]).")


@dataclass(frozen=True, kw_only=True)
class _SeedFile:
    rights_format: Literal["urn", "name"] = setting(
        "urn", "How forwarded security contexts list the caller's rights."
    )
    orgs: tuple[_OrgTable, ...] = setting((), "The organizations ([[orgs]]).")


def _unique(names: list[str], key: str, source: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name.lower() in seen:
            raise ConfigError(key, source, f"{name!r} appears twice")
        seen.add(name.lower())


def parse_seed(data: Mapping[str, Any], *, source: str) -> Seed:
    """Build a :class:`Seed` from parsed TOML; raises :class:`ConfigError` naming the key."""
    file = parse_table(_SeedFile, data, source=source)
    orgs = [_org(table, f"orgs[{i}]", source) for i, table in enumerate(file.orgs)]
    _unique([o.name for o in orgs], "orgs", source)
    if not any(o.is_system for o in orgs):
        orgs.insert(0, Org(SYSTEM_ORG_ID, SYSTEM_ORG, "System organization"))
    ids = [o.id for o in orgs] + [u.id for o in orgs for u in o.users]
    ids += [v.id for o in orgs for v in o.vdcs]
    ids += [a.id for o in orgs for v in o.vdcs for a in v.vapps]
    ids += [m.id for o in orgs for v in o.vdcs for a in v.vapps for m in a.vms]
    if len(set(ids)) != len(ids):
        raise ConfigError("orgs", source, "two objects have the same id")
    return Seed(tuple(orgs), file.rights_format, source)


def _org(table: _OrgTable, where: str, source: str) -> Org:
    name = table.name
    system = name.lower() == SYSTEM_ORG.lower()
    org_id = table.id or (SYSTEM_ORG_ID if system else derived_id("org", name))
    users = tuple(
        User(
            id=u.id or derived_id("user", name, u.name),
            name=u.name,
            password=u.password,
            org_id=org_id,
            full_name=u.name if u.full_name is None else u.full_name,
            rights=u.rights,
        )
        for u in table.users
    )
    _unique([u.name for u in users], f"{where}.users", source)
    vdcs = []
    for i, v in enumerate(table.vdcs):
        vdc_id = v.id or derived_id("vdc", name, v.name)
        vapps = []
        for j, a in enumerate(v.vapps):
            vapp_where = f"{where}.vdcs[{i}].vapps[{j}]"
            vapp_id = a.id or derived_id("vapp", name, v.name, a.name)
            vms = tuple(
                Vm(m.id or derived_id("vm", name, v.name, a.name, m.name), m.name, vapp_id)
                for m in a.vms
            )
            _unique([m.name for m in vms], f"{vapp_where}.vms", source)
            owner = _owner(a.owner, users, f"{vapp_where}.owner", source)
            vapps.append(VApp(vapp_id, a.name, vdc_id, owner, vms))
        _unique([a.name for a in vapps], f"{where}.vdcs[{i}].vapps", source)
        vdcs.append(Vdc(vdc_id, v.name, org_id, tuple(vapps)))
    _unique([v.name for v in vdcs], f"{where}.vdcs", source)
    full_name = name if table.full_name is None else table.full_name
    return Org(org_id, name, full_name, users, tuple(vdcs))


def _owner(name: str, users: tuple[User, ...], key: str, source: str) -> str:
    """The id of the vApp's ``owner``: a user of the same org, named; ``""`` when not given."""
    if not name:
        return ""
    user = next((u for u in users if u.name.lower() == name.lower()), None)
    if user is None:
        raise ConfigError(key, source, f"{name!r} is not a user of this organization")
    return user.id
