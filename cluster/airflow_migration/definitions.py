"""Copying what is not history: DAG pause states, variables, connections, pools, users.

Each row is keyed by its name; a name Tradewind has already is kept as Tradewind has it
(an operator may have set it on purpose) and counted as present. Secrets are decrypted
with Airflow's Fernet key and encrypted with Tradewind's (``core.fernet_key``); a value
Airflow's key cannot decrypt stops the migration (a wrong key would copy garbage).

Users: Airflow's (Flask-AppBuilder) keep werkzeug password hashes, which Tradewind
verifies (:mod:`cluster.metastore.users`), so they sign in with their Airflow
passwords. A user with no password hash (signed in through LDAP or OAuth) is not
created: the report lists them, to invite again with ``tradewind users create``. Airflow's roles map to Tradewind's by name; a
user with several gets the strongest, one with only custom roles ``Viewer`` (noted).
"""

from __future__ import annotations

from typing import Any

from cryptography.fernet import MultiFernet
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from cluster.airflow_migration.report import Report
from cluster.airflow_migration.source import AirflowMetastore, utc
from cluster.errors import SecretError
from cluster.metastore.models import Connection, Dag, SlotPool, User, Variable
from cluster.metastore.secrets import decrypt, encrypt
from cluster.metastore.users import ROLES, WERKZEUG_METHODS

#: Tradewind's roles, strongest first
ROLE_ORDER = ("Admin", "Op", "User", "Viewer", "Public")
FALLBACK_ROLE = "Viewer"


def copy_dags(
    source: AirflowMetastore, session: Session, report: Report, *, write: bool
) -> list[str]:
    """Pause states: a DAG Tradewind knows takes Airflow's and re-plans its next run from
    the runs just copied; one it has not parsed yet gets an inactive row that keeps the
    pause state until its file is parsed. Returns every DAG id of Airflow's."""
    dags = source.rows("dag")
    known = {d.dag_id: d for d in session.scalars(select(Dag))}
    report["dags"].found = len(dags)
    for dag in dags:
        row = known.get(dag["dag_id"])
        paused = bool(dag["is_paused"])
        if row is None:
            report["dags"].added += 1
            if write:
                session.add(
                    Dag(dag_id=dag["dag_id"], fileloc=dag.get("fileloc") or "",
                        is_paused=paused, is_active=False)
                )  # fmt: skip
        else:
            report["dags"].present += 1
            if write:
                row.is_paused = paused
                # the scheduler computes the next run after the latest migrated one
                row.next_dagrun_create_after = None
    session.flush()
    return [d["dag_id"] for d in dags]


def copy_variables(
    source: AirflowMetastore, session: Session, fernet: tuple[MultiFernet, MultiFernet],
    report: Report, *, write: bool,
) -> None:  # fmt: skip
    """``fernet``: (Airflow's, Tradewind's)."""
    airflow, ours = fernet
    known = set(session.scalars(select(Variable.key)))
    rows = []
    for var in source.rows("variable"):
        if var["key"] in known:
            report["variables"].present += 1
            continue
        value = var["val"]
        if value is not None and var.get("is_encrypted"):
            value = _decrypt(airflow, value, f"variable {var['key']!r}")
        rows.append(
            {
                "key": var["key"],
                "val": None if value is None else encrypt(ours, value),
                "description": var.get("description"),
                "is_encrypted": True,
            }
        )
    _insert(session, Variable, rows, report, "variables", write=write)


def copy_connections(
    source: AirflowMetastore, session: Session, fernet: tuple[MultiFernet, MultiFernet],
    report: Report, *, write: bool,
) -> None:  # fmt: skip
    airflow, ours = fernet
    known = set(session.scalars(select(Connection.conn_id)))
    rows = []
    for conn in source.rows("connection"):
        if conn["conn_id"] in known:
            report["connections"].present += 1
            continue
        password, extra = conn["password"], conn["extra"]
        what = f"connection {conn['conn_id']!r}"
        if password is not None and conn.get("is_encrypted"):
            password = _decrypt(airflow, password, what)
        if extra is not None and conn.get("is_extra_encrypted"):
            extra = _decrypt(airflow, extra, what)
        rows.append(
            {
                "conn_id": conn["conn_id"],
                "conn_type": conn["conn_type"] or "",
                "description": conn.get("description"),
                "host": conn["host"],
                "schema": conn["schema"],
                "login": conn["login"],
                "password": None if password is None else encrypt(ours, password),
                "port": conn["port"],
                "extra": None if extra is None else encrypt(ours, extra),
            }
        )
    _insert(session, Connection, rows, report, "connections", write=write)


def copy_pools(source: AirflowMetastore, session: Session, report: Report, *, write: bool) -> None:
    known = set(session.scalars(select(SlotPool.pool)))
    rows = []
    for pool in source.rows("slot_pool"):
        if pool["pool"] in known:
            report["pools"].present += 1
            continue
        rows.append({"pool": pool["pool"], "slots": pool["slots"],
                     "description": pool.get("description")})  # fmt: skip
    _insert(session, SlotPool, rows, report, "pools", write=write)


def copy_users(source: AirflowMetastore, session: Session, report: Report, *, write: bool) -> None:
    known = set(session.scalars(select(User.username)))
    roles = _roles_by_user(source)
    rows = []
    for user in source.rows("ab_user"):
        if user["username"] in known:
            report["users"].present += 1
            continue
        password = user.get("password") or ""
        if not password.startswith(WERKZEUG_METHODS):
            report.reinvite.append(user["username"])
            report["users"].skipped += 1
            continue
        role = _role(roles.get(user["id"], []))
        if role is None:
            role = FALLBACK_ROLE
            report.notes.append(
                f"user {user['username']!r} has no Airflow role Tradewind has: made {role}"
            )
        rows.append(
            {
                "username": user["username"],
                "email": user.get("email"),
                "password_hash": password,
                "role": role,
                "active": bool(user.get("active")),
                "created_at": utc(user.get("created_on")) or utc(user.get("changed_on")),
                "last_login": utc(user.get("last_login")),
                "failed_logins": 0,
            }
        )
    _insert(session, User, [_with_created(r) for r in rows], report, "users", write=write)


def _with_created(row: dict[str, Any]) -> dict[str, Any]:
    if row["created_at"] is None:
        del row["created_at"]  # the column's default: now
    return row


def _roles_by_user(source: AirflowMetastore) -> dict[int, list[str]]:
    names = {r["id"]: r["name"] for r in source.rows("ab_role")}
    found: dict[int, list[str]] = {}
    for link in source.rows("ab_user_role"):
        found.setdefault(link["user_id"], []).append(names.get(link["role_id"], ""))
    return found


def _role(names: list[str]) -> str | None:
    """The strongest of Tradewind's roles among Airflow's ``names``."""
    matching = [r for r in ROLE_ORDER if r in names and r in ROLES]
    return matching[0] if matching else None


def _decrypt(fernet: MultiFernet, token: str, what: str) -> str:
    try:
        return decrypt(fernet, token)
    except SecretError as exc:
        raise SecretError(
            f"cannot decrypt {what} with the given --fernet-key: pass Airflow's "
            "core.fernet_key (several, comma-separated, if Airflow had rotated keys)"
        ) from exc


def _insert(
    session: Session, model: type, rows: list[dict[str, Any]], report: Report, table: str,
    *, write: bool,
) -> None:  # fmt: skip
    report[table].found = report[table].present + report[table].skipped + len(rows)
    report[table].added = len(rows)
    if write and rows:
        session.execute(insert(model), rows)
