"""``/roles`` and ``/permissions`` (Admin), ``/plugins`` and ``/providers`` (Op).

Roles are Airflow's five fixed roles; what each may do is derived from the one
permission table (:mod:`cluster.web.role_permissions`), so these answers are what the
webserver enforces. Roles cannot be created, changed or deleted (those Airflow
operations are not served). The webserver loads no plugins and Tradewind has no
provider packages, so both lists are empty.
"""

from __future__ import annotations

from cluster.errors import NotFoundError
from cluster.web.api.admin_schemas import (
    ActionCollection,
    ActionResource,
    NamedThing,
    PluginCollection,
    ProviderCollection,
    RoleCollection,
    RoleInfo,
)
from cluster.web.api.operations import Routes
from cluster.web.api.schemas import Ordered, Page
from cluster.web.permissions import Role
from cluster.web.problems import ApiProblem
from cluster.web.role_permissions import all_permissions, role_permissions

role_routes = Routes("Role")
permission_routes = Routes("Permission")
plugin_routes = Routes("Plugin")
provider_routes = Routes("Provider")


def role_model(role: Role) -> RoleInfo:
    actions = [
        ActionResource(action=NamedThing(name=action), resource=NamedThing(name=resource))
        for action, resource in role_permissions(role)
    ]
    return RoleInfo(name=role.label, actions=actions)


@role_routes.operation("/roles", "GET", query=Ordered, response=RoleCollection)
def get_roles(*, query: Ordered) -> RoleCollection:
    """Airflow's roles with their permissions, by name (``order_by``: ``name``/``-name``)."""
    if (query.order_by or "name").removeprefix("-") not in ("name", "id"):
        raise ApiProblem(400, f"Ordering with '{query.order_by}' is disallowed; use name")
    roles = sorted(Role, key=lambda r: r.label, reverse=(query.order_by or "").startswith("-"))
    page = roles[query.offset : query.offset + query.limit]
    return RoleCollection(roles=[role_model(r) for r in page], total_entries=len(roles))


@role_routes.operation("/roles/<role_name>", "GET", response=RoleInfo)
def get_role(role_name: str) -> RoleInfo:
    """One role with its permissions."""
    role = Role.parse(role_name)
    if role is None:
        raise NotFoundError(f"Role with name '{role_name}' was not found")
    return role_model(role)


@permission_routes.operation("/permissions", "GET", query=Page, response=ActionCollection)
def get_permissions(*, query: Page) -> ActionCollection:
    """The actions some role may take (``can_read``, ``can_edit``, …)."""
    names = list(all_permissions())
    page = names[query.offset : query.offset + query.limit]
    return ActionCollection(actions=[NamedThing(name=n) for n in page], total_entries=len(names))


@plugin_routes.operation("/plugins", "GET", query=Page, response=PluginCollection)
def get_plugins(*, query: Page) -> PluginCollection:
    """Plugins loaded by this webserver: none (it never imports user code)."""
    return PluginCollection(plugins=[], total_entries=0)


@provider_routes.operation("/providers", "GET", response=ProviderCollection)
def get_providers() -> ProviderCollection:
    """Provider packages: none (Tradewind's operators are built in)."""
    return ProviderCollection(providers=[], total_entries=0)
