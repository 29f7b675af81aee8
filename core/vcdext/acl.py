"""Declarations for vCD's authorization framework (protocol notes §5): resource classes, their
actions, and the ACL rules that say who may perform each action.

::

    service.resource_class(
        "Backup",
        mime_type="application/vnd.example.backup+xml",
        url_template="{baseUri}backup/{resourceId}",
        nid="io.example.backup",
        urn_pattern="backup:(?<id>.+)",
        actions=[
            ResourceAction(
                "Delete Backup",
                "DELETE",
                "/api/backup/(?<id>[^/]+)",
                acl=[Acl("deleters", principal="Delete Backup")],
            ),
        ],
    )

Registering a service that declares resource classes creates them in vCD with their actions
and rules, and sets the service's ``AuthorizationEnabled``. An :class:`Acl` part is one of
vCD's access kinds: ``principal="*"`` is ``Shared`` (every user), a right name is ``Entity``
(users whose role holds that right); ``organization`` is ``Shared`` (members of the
organization that owns the resource) or ``Published`` (any organization); ``resource`` is
``Shared`` (every resource of the class).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from .errors import BadRequest
from .vcloud.authorization import compile_pattern
from .vcloud.model import ACTION_METHODS

#: ``principal`` meaning every user (vCD's ``Shared`` principal access).
EVERYONE = "*"
#: ``organization`` meaning vCD's ``System`` org (an ``Entity`` access naming it by its fixed
#: id): System administrators.
SYSTEM = "System"
_ORG_ACCESS = ("Shared", "Published", SYSTEM)
_RESOURCE_ACCESS = ("Shared",)

#: Turns a right name as written into vCD's full name (or raises).
ResolveRight = Callable[[str], str]


@dataclass(frozen=True)
class Acl:
    """One ACL rule: who may perform an action. Any matching rule allows it.

    :param principal: ``"*"`` for every user, or the name of a right (short for one this
        plugin declares, ``{namespace}:Name`` or vCD's own otherwise) whose holders may.
    :param organization: ``"Shared"``: members of the organization owning the resource;
        ``"Published"``: members of any organization; ``"System"``: System administrators
        (vCD's ``Entity`` access naming the ``System`` org).
    :param resource: ``"Shared"``: every resource of the class.
    """

    name: str
    principal: str = EVERYONE
    organization: str = "Shared"
    resource: str = "Shared"
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("an ACL rule needs a name")
        if not self.principal.strip():
            raise ValueError(f"ACL rule {self.name!r}: principal must be '*' or a right name")
        if self.organization not in _ORG_ACCESS:
            raise ValueError(
                f"ACL rule {self.name!r}: organization must be one of {', '.join(_ORG_ACCESS)}"
            )
        if self.resource not in _RESOURCE_ACCESS:
            raise ValueError(f"ACL rule {self.name!r}: resource must be 'Shared'")

    @property
    def principal_right(self) -> str | None:
        """The right whose holders the rule names (``None``: every user)."""
        return None if self.principal == EVERYONE else self.principal


@dataclass(frozen=True)
class ResourceAction:
    """An action on a resource class: ``method`` on URLs matching ``url_pattern`` (a regular
    expression matched against the whole path; ``(?<id>…)`` captures the resource id)."""

    name: str
    method: str
    url_pattern: str
    #: The rules (any list; kept as a tuple).
    acl: Sequence[Acl] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", self.method.upper())
        object.__setattr__(self, "acl", tuple(self.acl))
        if not self.name.strip():
            raise ValueError("a resource class action needs a name")
        if self.method not in ACTION_METHODS:
            raise ValueError(
                f"action {self.name!r}: method must be one of {', '.join(ACTION_METHODS)}"
            )
        if not self.url_pattern or len(self.url_pattern) > 1024:
            raise ValueError(f"action {self.name!r}: url_pattern must be 1-1024 characters")
        try:
            compile_pattern(self.url_pattern)
        except BadRequest as exc:
            raise ValueError(f"action {self.name!r}: {exc.message}") from None
        if not self.acl:
            raise ValueError(
                f"action {self.name!r} needs at least one Acl rule (vCD requires one, and an "
                "action nobody may perform would lock every caller out)"
            )
        names = [rule.name for rule in self.acl]
        if len(set(names)) != len(names):
            raise ValueError(f"action {self.name!r} declares an ACL rule name twice")


@dataclass(frozen=True)
class ResourceClass:
    """A resource class a service defines, with its actions (see the module docs)."""

    name: str
    mime_type: str = ""
    url_template: str = ""
    nid: str = ""
    urn_pattern: str = ""
    #: The actions (any list; kept as a tuple).
    actions: Sequence[ResourceAction] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "actions", tuple(self.actions))
        if not self.name.strip() or len(self.name) > 255:
            raise ValueError("a resource class needs a name of 1-255 characters")
        for what, value, limit in (
            ("mime_type", self.mime_type, 128),
            ("url_template", self.url_template, 1024),
            ("nid", self.nid, 255),
            ("urn_pattern", self.urn_pattern, 255),
        ):
            if len(value) > limit:
                raise ValueError(f"resource class {self.name!r}: {what} is over {limit} chars")
        if not self.actions:
            raise ValueError(f"resource class {self.name!r} needs at least one action")
        names = [a.name for a in self.actions]
        if len(set(names)) != len(names):
            raise ValueError(f"resource class {self.name!r} declares an action name twice")

    def expand_rights(self, expand: ResolveRight) -> ResourceClass:
        """The class with each ACL principal right replaced by ``expand(name)``."""
        return replace(
            self,
            actions=tuple(
                replace(
                    action,
                    acl=tuple(
                        rule
                        if rule.principal_right is None
                        else replace(rule, principal=expand(rule.principal_right))
                        for rule in action.acl
                    ),
                )
                for action in self.actions
            ),
        )

    @property
    def principal_rights(self) -> set[str]:
        """Every right an ACL rule of the class names."""
        return {
            rule.principal_right
            for action in self.actions
            for rule in action.acl
            if rule.principal_right is not None
        }


__all__ = ["EVERYONE", "SYSTEM", "Acl", "ResourceAction", "ResourceClass"]
