"""``/variables``: read and change the key/value settings DAGs use (Op and Admin only)."""

from __future__ import annotations

from sqlalchemy import select

from cluster.errors import AlreadyExistsError, UsageError
from cluster.metastore import variables as store
from cluster.metastore.models import Variable as VariableRow
from cluster.web.api.admin_schemas import (
    Variable,
    VariableBody,
    VariableCollection,
    VariableInfo,
    VariablePatch,
)
from cluster.web.api.lookups import audit_api, paginate
from cluster.web.api.masks import masked
from cluster.web.api.operations import Routes
from cluster.web.api.ordering import order_clauses
from cluster.web.api.schemas import Ordered, UpdateMaskQuery
from cluster.web.context import db_session, web_context

routes = Routes("Variable")


def _audit(event: str, key: str) -> None:
    audit_api(f"variables.{event}", session=db_session(), key=key)


def _read(key: str) -> Variable:
    session = db_session()
    value = store.get_variable(key, session=session, fernet=web_context().fernet())
    row = session.get(VariableRow, key)
    return Variable(key=key, value=value, description=row.description if row else None)


VARIABLE_ORDER = {"key": VariableRow.key, "description": VariableRow.description}


@routes.operation("/variables", "GET", query=Ordered, response=VariableCollection)
def get_variables(*, query: Ordered) -> VariableCollection:
    """List variables: keys and descriptions, never values (by key, or ``order_by``)."""
    order = order_clauses(query.order_by, VARIABLE_ORDER, default="key", tiebreak=VariableRow.key)
    statement = select(VariableRow).order_by(*order)
    rows, total = paginate(db_session(), statement, query)
    items = [
        VariableInfo(key=r.key, description=r.description, is_encrypted=r.is_encrypted)
        for r in rows
    ]
    return VariableCollection(variables=items, total_entries=total)


@routes.operation("/variables/<variable_key>", "GET", response=Variable)
def get_variable(variable_key: str) -> Variable:
    """One variable with its decrypted value."""
    return _read(variable_key)


@routes.operation("/variables", "POST", body=VariableBody, response=Variable)
def post_variable(*, body: VariableBody) -> Variable:
    """Create a variable (409 when the key exists: PATCH it instead)."""
    session = db_session()
    if session.get(VariableRow, body.key) is not None:
        raise AlreadyExistsError(f"variable '{body.key}' exists already: PATCH it instead")
    store.set_variable(
        body.key,
        body.value,
        session=session,
        fernet=web_context().fernet(),
        description=body.description,
    )
    _audit("set", body.key)
    return _read(body.key)


@routes.operation(
    "/variables/<variable_key>",
    "PATCH",
    query=UpdateMaskQuery,
    body=VariablePatch,
    response=Variable,
)
def patch_variable(variable_key: str, *, query: UpdateMaskQuery, body: VariablePatch) -> Variable:
    """Replace a variable's value (and description when given); with ``update_mask``,
    only the fields it names (``value``, ``description``) change."""
    if body.key is not None and body.key != variable_key:
        raise UsageError("a variable cannot be renamed: the key in the body must match the path")
    session = db_session()
    current = _read(variable_key)  # 404 for unknown keys
    given = body.model_dump(exclude_unset=True, exclude={"key"})
    changes = masked(query.update_mask, given, updatable={"value", "description"})
    store.set_variable(
        variable_key,
        changes.get("value", current.value),
        session=session,
        fernet=web_context().fernet(),
        description=changes.get("description"),
    )
    if "description" in changes and changes["description"] is None:
        row = session.get(VariableRow, variable_key)
        if row is not None:
            row.description = None
    _audit("set", variable_key)
    return _read(variable_key)


@routes.operation("/variables/<variable_key>", "DELETE", status=204)
def delete_variable(variable_key: str) -> None:
    """Delete a variable."""
    store.delete_variable(variable_key, session=db_session())
    _audit("delete", variable_key)
