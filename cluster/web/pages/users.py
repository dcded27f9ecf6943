"""User management (Admin only): list, create with a role, change a role, delete.

An admin cannot demote or delete their own account here, so the last way in is never
closed by a slip of the mouse (``tradewind users`` on a master can still do it).
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from cluster.errors import AlreadyExistsError, UsageError
from cluster.metastore import users
from cluster.web.auth import forget_credentials
from cluster.web.context import db_session, require_user
from cluster.web.pages.requests import audit_web, text

bp = Blueprint("users", __name__)


@bp.get("/users")
def index() -> str:
    return render_template(
        "users.html", users=users.list_users(session=db_session()), roles=users.ROLES
    )


@bp.route("/users/new", methods=["GET", "POST"])
def create() -> BaseResponse | str | tuple[str, int]:
    """A new user with a password and a role."""
    if request.method == "GET":
        return render_template("user_form.html", roles=users.ROLES, form={}, error=None)
    try:
        record = users.create_user(
            text("username") or "",
            request.form.get("password", ""),
            role=request.form.get("role", ""),
            email=text("email"),
            session=db_session(),
        )
    except (UsageError, AlreadyExistsError) as exc:
        form = {"username": text("username"), "email": text("email"), "role": text("role")}
        return render_template("user_form.html", roles=users.ROLES, form=form, error=str(exc)), 400
    audit_web("users.create", user=record.username, role=record.role)
    flash(f"User {record.username} created with the role {record.role}.", "info")
    return redirect(url_for("users.index"))


def _not_yourself(username: str, doing: str) -> None:
    if username == require_user().username:
        raise UsageError(f"you cannot {doing} your own account here")


@bp.post("/users/<username>/role")
def set_role(username: str) -> BaseResponse:
    _not_yourself(username, "change the role of")
    role = request.form.get("role", "")
    users.set_role(username, role, session=db_session())
    forget_credentials()
    audit_web("users.set_role", user=username, role=role)
    flash(f"{username} now has the role {role}.", "info")
    return redirect(url_for("users.index"))


@bp.post("/users/<username>/delete")
def delete(username: str) -> BaseResponse:
    _not_yourself(username, "delete")
    users.delete_user(username, session=db_session())
    forget_credentials()
    audit_web("users.delete", user=username)
    flash(f"User {username} deleted.", "info")
    return redirect(url_for("users.index"))
