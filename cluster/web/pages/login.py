"""The login and logout pages.

Login checks the password with the same throttle and lockout as HTTP basic auth,
starts a signed-cookie session and goes back where the user was heading (only to
paths on this site: an open redirect would let other sites borrow our login page).
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session
from werkzeug.wrappers import Response as BaseResponse

from cluster.web.auth import check_password, sign_in
from cluster.web.csrf import new_csrf_token
from cluster.web.problems import ApiProblem

bp = Blueprint("pages", __name__)


def safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else the home page."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse | str | tuple[str, int]:
    """Show the form; on POST check the password and start a session."""
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("login.html", next_url=next_url, error=None)
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    try:
        record = check_password(username, password) if username and password else None
    except ApiProblem as exc:  # throttled
        return render_template("login.html", next_url=next_url, error=exc.detail), exc.status
    if record is None:
        error = "Wrong username or password, or the account is locked for a while."
        return render_template("login.html", next_url=next_url, error=error), 401
    sign_in(record.id)
    new_csrf_token()
    return redirect(next_url)


@bp.post("/logout")
def logout() -> BaseResponse:
    """End the session (a POST with the CSRF token, so other sites cannot log users out)."""
    session.clear()
    return redirect("/login")
