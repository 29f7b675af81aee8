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
(it is added when the file does not list it). A user of ``System`` is a system administrator.
"""

from __future__ import annotations

import tomllib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vcdext.errors import ConfigError
from vcdext.settings import read_toml

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


#: The built-in seed: a system administrator and one org with a user holding the hello
#: plugin's right and one without it, and a vApp of each with VMs in it. Passwords are
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
full_name = "Alice (holds {io.vcdext.hello}:View Org Greeting)"
rights = ["{io.vcdext.hello}:View Org Greeting"]
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


def load_seed(path: str | Path | None) -> Seed:
    """Read a seed file; ``None`` or ``""`` gives the demo seed. Raises :class:`ConfigError`."""
    if not path:
        return demo_seed()
    return parse_seed(read_toml(path, "cell.seed"), source=str(path))


class _Reader:
    """Typed access to one TOML table, naming the key path in every error."""

    def __init__(self, table: Any, where: str, source: str, known: tuple[str, ...]) -> None:
        self.source, self.where = source, where
        if not isinstance(table, Mapping):
            raise self.error("", "expected a table")
        unknown = sorted(set(table) - set(known))
        if unknown:
            raise self.error(unknown[0], f"unknown key (known keys: {', '.join(known)})")
        self.table = table

    def error(self, key: str, problem: str) -> ConfigError:
        path = f"{self.where}.{key}" if key else self.where
        return ConfigError(path or "(seed)", self.source, problem)

    def text(self, key: str, default: str | None = None) -> str:
        value = self.table.get(key, default)
        if value is None:
            raise self.error(key, "is required")
        if not isinstance(value, str):
            raise self.error(key, f"expected a string, got {value!r}")
        return value

    def name(self, key: str = "name") -> str:
        value = self.text(key).strip()
        if not value or "@" in value or ":" in value:
            raise self.error(key, f"must be non-empty and contain no '@' or ':', got {value!r}")
        return value

    def uuid(self, default: str) -> str:
        value = self.text("id", default)
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise self.error("id", f"expected a UUID, got {value!r}") from None

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"expected a list of strings, got {value!r}")
        return tuple(value)

    def tables(self, key: str) -> list[Any]:
        value = self.table.get(key, [])
        if not isinstance(value, list):
            raise self.error(key, "expected an array of tables ([[...]])")
        return value


def _unique(names: list[str], reader: _Reader, key: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name.lower() in seen:
            raise reader.error(key, f"{name!r} appears twice")
        seen.add(name.lower())


def parse_seed(data: Mapping[str, Any], *, source: str) -> Seed:
    """Build a :class:`Seed` from parsed TOML; raises :class:`ConfigError` naming the key."""
    top = _Reader(data, "", source, ("rights_format", "orgs"))
    rights_format = top.text("rights_format", "urn")
    if rights_format not in RIGHTS_FORMATS:
        raise top.error("rights_format", f"expected one of {', '.join(RIGHTS_FORMATS)}")
    orgs: list[Org] = []
    for i, table in enumerate(top.tables("orgs")):
        orgs.append(_org(_Reader(table, f"orgs[{i}]", source, _ORG_KEYS), source))
    _unique([o.name for o in orgs], top, "orgs")
    if not any(o.is_system for o in orgs):
        orgs.insert(0, Org(derived_id("org", SYSTEM_ORG), SYSTEM_ORG, "System organization"))
    ids = [o.id for o in orgs] + [u.id for o in orgs for u in o.users]
    ids += [v.id for o in orgs for v in o.vdcs]
    ids += [a.id for o in orgs for v in o.vdcs for a in v.vapps]
    ids += [m.id for o in orgs for v in o.vdcs for a in v.vapps for m in a.vms]
    if len(set(ids)) != len(ids):
        raise top.error("orgs", "two objects have the same id")
    return Seed(tuple(orgs), rights_format, source)


_ORG_KEYS = ("name", "full_name", "id", "users", "vdcs")


def _org(r: _Reader, source: str) -> Org:
    name = r.name()
    org_id = r.uuid(derived_id("org", name))
    users = []
    for i, table in enumerate(r.tables("users")):
        u = _Reader(
            table,
            f"{r.where}.users[{i}]",
            source,
            ("name", "password", "full_name", "id", "rights"),
        )
        user_name = u.name()
        password = u.text("password")
        if not password:
            raise u.error("password", "must not be empty")
        users.append(
            User(
                id=u.uuid(derived_id("user", name, user_name)),
                name=user_name,
                password=password,
                org_id=org_id,
                full_name=u.text("full_name", user_name),
                rights=u.strings("rights"),
            )
        )
    _unique([u.name for u in users], r, "users")
    vdcs = []
    for i, table in enumerate(r.tables("vdcs")):
        v = _Reader(table, f"{r.where}.vdcs[{i}]", source, ("name", "id", "vapps"))
        vdc_name = v.name()
        vdc_id = v.uuid(derived_id("vdc", name, vdc_name))
        vapps = []
        for j, vapp_table in enumerate(v.tables("vapps")):
            a = _Reader(vapp_table, f"{v.where}.vapps[{j}]", source, ("name", "id", "owner", "vms"))
            vapp_name = a.name()
            vapp_id = a.uuid(derived_id("vapp", name, vdc_name, vapp_name))
            vapps.append(
                VApp(
                    vapp_id,
                    vapp_name,
                    vdc_id,
                    _owner(a, users),
                    _vms(a, source, vapp_id, (name, vdc_name, vapp_name)),
                )
            )
        _unique([a.name for a in vapps], v, "vapps")
        vdcs.append(Vdc(vdc_id, vdc_name, org_id, tuple(vapps)))
    _unique([v.name for v in vdcs], r, "vdcs")
    return Org(org_id, name, r.text("full_name", name), tuple(users), tuple(vdcs))


def _owner(a: _Reader, users: list[User]) -> str:
    """The id of the vApp's ``owner``: a user of the same org, named; ``""`` when not given."""
    name = a.text("owner", "")
    if not name:
        return ""
    user = next((u for u in users if u.name.lower() == name.lower()), None)
    if user is None:
        raise a.error("owner", f"{name!r} is not a user of this organization")
    return user.id


def _vms(a: _Reader, source: str, vapp_id: str, names: tuple[str, str, str]) -> tuple[Vm, ...]:
    """The ``[[...vms]]`` of one vApp."""
    vms = []
    for k, table in enumerate(a.tables("vms")):
        m = _Reader(table, f"{a.where}.vms[{k}]", source, ("name", "id"))
        vm_name = m.name()
        vms.append(Vm(m.uuid(derived_id("vm", *names, vm_name)), vm_name, vapp_id))
    _unique([m.name for m in vms], a, "vms")
    return tuple(vms)
