"""Admin pages for Op and Admin: variables, connections and pools.

Secrets stay secret: the variable list shows keys only (a value appears on its own
edit page), and the connection form never echoes the stored password; leaving the
password blank keeps it. Values are encrypted by the metastore functions.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from cluster.errors import AlreadyExistsError, NotFoundError, UsageError
from cluster.metastore import connections, pools, variables
from cluster.metastore.connections import ConnectionRecord
from cluster.metastore.models import DEFAULT_POOL
from cluster.web.context import db_session, web_context
from cluster.web.pages.requests import audit_web, checked, text

bp = Blueprint("admin", __name__)

Page = BaseResponse | str | tuple[str, int]


# --- variables ----------------------------------------------------------------------


@bp.get("/variables")
def variables_list() -> str:
    """Every variable's key and description; never the values."""
    return render_template(
        "variables.html", variables=variables.list_variables(session=db_session())
    )


@bp.route("/variables/new", methods=["GET", "POST"])
def variable_create() -> Page:
    return _variable_form(None)


@bp.route("/variables/<variable_key>/edit", methods=["GET", "POST"])
def variable_edit(variable_key: str) -> Page:
    return _variable_form(variable_key)


def _variable_form(key: str | None) -> Page:
    """Create (``key`` is ``None``) or edit one variable; the value is stored encrypted."""
    session, fernet = db_session(), web_context().fernet()
    if request.method == "GET":
        value = variables.get_variable(key, session=session, fernet=fernet) if key else ""
        info = _variable_info(key) if key else None
        description = info.description if info else ""
        return render_template(
            "variable_form.html", key=key, value=value, description=description, error=None
        )
    new_key = key or text("key")
    value = request.form.get("value", "")
    description = request.form.get("description", "")
    if not new_key:
        return render_template(
            "variable_form.html",
            key=None,
            value=value,
            description=description,
            error="A variable needs a key.",
        ), 400
    variables.set_variable(
        new_key, value, session=session, fernet=fernet, description=description or None
    )
    audit_web("variables.set", key=new_key)
    flash(f"Variable {new_key} saved.", "info")
    return redirect(url_for("admin.variables_list"))


def _variable_info(key: str) -> variables.VariableInfo | None:
    return next((v for v in variables.list_variables(session=db_session()) if v.key == key), None)


@bp.post("/variables/<variable_key>/delete")
def variable_delete(variable_key: str) -> BaseResponse:
    variables.delete_variable(variable_key, session=db_session())
    audit_web("variables.delete", key=variable_key)
    flash(f"Variable {variable_key} deleted.", "info")
    return redirect(url_for("admin.variables_list"))


# --- connections --------------------------------------------------------------------


@bp.get("/connections")
def connections_list() -> str:
    """Every connection without its password and extra."""
    rows = connections.list_connections(session=db_session())
    return render_template("connections.html", connections=rows)


@bp.route("/connections/new", methods=["GET", "POST"])
def connection_create() -> Page:
    return _connection_form(None)


@bp.route("/connections/<connection_id>/edit", methods=["GET", "POST"])
def connection_edit(connection_id: str) -> Page:
    return _connection_form(connection_id)


def _connection_form(conn_id: str | None) -> Page:
    """Create or edit a connection; a blank password keeps the stored one."""
    session, fernet = db_session(), web_context().fernet()
    stored = (
        connections.get_connection(conn_id, session=session, fernet=fernet) if conn_id else None
    )
    if request.method == "GET":
        shown = stored.without_secrets() if stored else None
        extra = stored.extra if stored else None
        return render_template(
            "connection_form.html", conn=shown, conn_id=conn_id, extra=extra, error=None
        )
    try:
        record = _connection_from_form(conn_id, stored)
        if stored is not None:
            connections.delete_connection(stored.conn_id, session=session)
        connections.add_connection(record, session=session, fernet=fernet)
        audit_web(
            "connections.update" if stored else "connections.add",
            conn_id=record.conn_id,
            conn_type=record.conn_type,
        )
    except (UsageError, AlreadyExistsError) as exc:
        return render_template(
            "connection_form.html",
            conn=_connection_from_form_loosely(conn_id),
            conn_id=conn_id,
            extra=request.form.get("extra"),
            error=str(exc),
        ), 400
    flash(f"Connection {record.conn_id} saved.", "info")
    return redirect(url_for("admin.connections_list"))


def _connection_from_form(conn_id: str | None, stored: ConnectionRecord | None) -> ConnectionRecord:
    """The record the form describes; :class:`UsageError` for a bad id, type or port."""
    new_id = conn_id or text("conn_id")
    conn_type = text("conn_type")
    if not new_id or not conn_type:
        raise UsageError("A connection needs an id and a type.")
    port_text = text("port")
    if port_text is not None and not port_text.isdigit():
        raise UsageError(f"The port must be a number, not {port_text!r}.")
    password = request.form.get("password") or None
    if password is None and stored is not None and not checked("clear_password"):
        password = stored.password
    return ConnectionRecord(
        conn_id=new_id,
        conn_type=conn_type,
        description=text("description"),
        host=text("host"),
        schema=text("schema"),
        login=text("login"),
        password=password,
        port=int(port_text) if port_text else None,
        extra=text("extra"),
    )


def _connection_from_form_loosely(conn_id: str | None) -> ConnectionRecord:
    """What the user typed, to show the form again (never the password)."""
    return ConnectionRecord(
        conn_id=conn_id or request.form.get("conn_id", ""),
        conn_type=request.form.get("conn_type", ""),
        description=text("description"),
        host=text("host"),
        schema=text("schema"),
        login=text("login"),
        port=None,
    )


@bp.post("/connections/<connection_id>/delete")
def connection_delete(connection_id: str) -> BaseResponse:
    connections.delete_connection(connection_id, session=db_session())
    audit_web("connections.delete", conn_id=connection_id)
    flash(f"Connection {connection_id} deleted.", "info")
    return redirect(url_for("admin.connections_list"))


# --- pools --------------------------------------------------------------------------


@bp.get("/pools")
def pools_list() -> str:
    """Pools with their slots and the slots queued and running instances hold."""
    session = db_session()
    return render_template(
        "pools.html",
        pools=pools.list_pools(session=session),
        occupied=pools.occupied_slots(session=session),
        default_pool=DEFAULT_POOL,
    )


@bp.route("/pools/new", methods=["GET", "POST"])
def pool_create() -> Page:
    return _pool_form(None)


@bp.route("/pools/<pool_name>/edit", methods=["GET", "POST"])
def pool_edit(pool_name: str) -> Page:
    return _pool_form(pool_name)


def _pool_form(name: str | None) -> Page:
    session = db_session()
    stored = pools.get_pool(name, session=session) if name else None
    if request.method == "GET":
        return render_template("pool_form.html", pool=stored, name=name, error=None)
    new_name = name or text("pool")
    slots = text("slots") or ""
    try:
        if not new_name:
            raise UsageError("A pool needs a name.")
        if not slots.lstrip("-").isdigit():
            raise UsageError(f"Slots must be a whole number, not {slots!r}.")
        if name is None and _pool_exists(new_name):
            raise AlreadyExistsError(f"Pool {new_name} exists already: edit it instead.")
        pools.set_pool(
            new_name, int(slots), session=session, description=request.form.get("description")
        )
        audit_web("pools.set", pool=new_name, slots=int(slots))
    except (UsageError, AlreadyExistsError) as exc:
        return render_template("pool_form.html", pool=stored, name=name, error=str(exc)), 400
    flash(f"Pool {new_name} saved.", "info")
    return redirect(url_for("admin.pools_list"))


def _pool_exists(name: str) -> bool:
    try:
        pools.get_pool(name, session=db_session())
    except NotFoundError:
        return False
    return True


@bp.post("/pools/<pool_name>/delete")
def pool_delete(pool_name: str) -> BaseResponse:
    """Delete a pool; ``default_pool`` is refused with a message."""
    try:
        pools.delete_pool(pool_name, session=db_session())
    except UsageError as exc:
        flash(str(exc), "error")
    else:
        audit_web("pools.delete", pool=pool_name)
        flash(f"Pool {pool_name} deleted.", "info")
    return redirect(url_for("admin.pools_list"))
