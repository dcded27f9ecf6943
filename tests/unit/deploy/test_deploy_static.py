"""Static checks of the deployment kit: the playbook, the roles, their units and configs.

Each check runs the real tool (ansible-playbook, ansible-lint, systemd-analyze, haproxy,
vagrant) and fails on any complaint, so a typo in a role or a unit is caught without a
machine to deploy on. Templates are rendered with the inventory's values the way Ansible
would, with the role defaults and ``group_vars/all.yml`` underneath.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from cluster.config import load_settings
from cluster.deploy.topology import load_inventory

REPO = Path(__file__).resolve().parents[3]
ANSIBLE = REPO / "ansible"
ROLES = REPO / "roles"
VENV_BIN = Path(sys.executable).parent
INVENTORIES = {name: ANSIBLE / "inventories" / name / "hosts.yml" for name in ("vagrant", "local")}
ROLE_NAMES = ("common", "metastore", "rabbitmq", "zookeeper", "haproxy", "master", "worker")
UNITS = {
    "master": (
        "tradewind-scheduler.service",
        "tradewind-triggerer.service",
        "tradewind-webserver.service",
        "tradewind-flower.service",
    ),
    "worker": ("tradewind-worker.service",),
    "zookeeper": ("zookeeper.service",),
}


def tool(name: str, *, package: str) -> str:
    """The path of a command-line tool; the test fails (never skips) when it is missing."""
    search = os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    found = shutil.which(name, path=search)
    if found is None:
        pytest.fail(f"'{name}' is needed by this test: install {package} (scripts/install-deps)")
    return found


def run(argv: list[str], *, cwd: Path = REPO, env: dict[str, str] | None = None, timeout=180):
    done = subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})},
    )
    return done


def ansible_env() -> dict[str, str]:
    return {"ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}


def ansible_bool(value: Any) -> bool:
    """Ansible's ``bool`` filter: ``yes``/``on``/``1``/``true`` (any case) are true."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("yes", "on", "1", "true")


#: Ansible's filters that the roles' templates use and plain Jinja lacks
ANSIBLE_FILTERS = {"bool": ansible_bool}


def render_vars(role: str, inventory: Path, host: str, **overrides: Any) -> dict[str, Any]:
    """The variables a role's templates see on ``host``: group_vars, role defaults, host vars.

    Values that are themselves templates are rendered against the rest, as Ansible does.
    """
    data = yaml.safe_load(inventory.read_text())
    groups: dict[str, list[str]] = {}
    hostvars: dict[str, dict[str, Any]] = {}
    for group, body in data["all"]["children"].items():
        for name, variables in (body.get("hosts") or {}).items():
            groups.setdefault(group, []).append(name)
            hostvars.setdefault(name, dict(data["all"].get("vars") or {})).update(variables or {})
    groups["all"] = list(hostvars)
    context: dict[str, Any] = {}
    context.update(yaml.safe_load((ANSIBLE / "group_vars" / "all.yml").read_text()))
    context.update(yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text()) or {})
    context.update(hostvars[host])
    context.update(overrides)
    context.update(
        groups=groups,
        hostvars=hostvars,
        inventory_hostname=host,
        ansible_managed="Ansible managed",
        playbook_dir=str(ANSIBLE),
    )
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters.update(ANSIBLE_FILTERS)
    for _ in range(3):
        for key, value in list(context.items()):
            if isinstance(value, str) and "{{" in value:
                context[key] = env.from_string(value).render(context)
    return context


def render(role: str, template: str, variables: dict[str, Any]) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROLES / role / "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
    )
    env.filters.update(ANSIBLE_FILTERS)
    return env.get_template(template).render(variables)


@pytest.mark.parametrize(
    "metastore", ["mariadb", "postgresql", "postgresql metastore_pgbouncer=true"]
)
@pytest.mark.parametrize("inventory", sorted(INVENTORIES))
def test_site_playbook_passes_syntax_check(inventory: str, metastore: str) -> None:
    playbook = tool("ansible-playbook", package="ansible-core (pip)")
    done = run(
        [
            playbook, "-i", str(INVENTORIES[inventory]), "-e", f"metastore_engine={metastore}",
            "--syntax-check", "site.yml",
        ],
        cwd=ANSIBLE,
        env=ansible_env(),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_metastore_engine_is_one_of_two_and_each_has_its_tasks() -> None:
    main = yaml.safe_load((ROLES / "metastore" / "tasks" / "main.yml").read_text())
    checks = main[0]["ansible.builtin.assert"]["that"]
    assert checks[0] == 'metastore_engine in ["mariadb", "postgresql"]'
    assert "metastore_pgbouncer" in checks[1]
    for engine in ("mariadb", "postgresql"):
        assert (ROLES / "metastore" / "tasks" / f"{engine}.yml").is_file()
    group_vars = yaml.safe_load((ANSIBLE / "group_vars" / "all.yml").read_text())
    assert group_vars["metastore_engine"] == "mariadb"
    assert group_vars["metastore_pgbouncer"] is False


def test_postgresql_config_and_bootstrap_render() -> None:
    variables = render_vars(
        "metastore", INVENTORIES["vagrant"], "infra1", metastore_engine="postgresql"
    )
    conf = render("metastore", "tradewind.postgresql.conf.j2", variables)
    assert "port = 5432" in conf and "listen_addresses = '0.0.0.0'" in conf
    bootstrap = render("metastore", "bootstrap.postgresql.sql.j2", variables)
    assert 'CREATE DATABASE "tradewind" OWNER "tradewind"' in bootstrap
    assert "ALTER ROLE \"tradewind\" LOGIN PASSWORD 'changeme1';" in bootstrap
    pgbouncer = render("metastore", "pgbouncer.ini.j2", variables)
    assert "tradewind = host=127.0.0.1 port=5432 dbname=tradewind" in pgbouncer
    assert "listen_port = 6432" in pgbouncer and "pool_mode = transaction" in pgbouncer


def test_playbook_and_roles_are_lint_clean_with_the_production_profile() -> None:
    lint = tool("ansible-lint", package="ansible-lint (pip)")
    done = run(
        [lint, "--offline", "--profile", "production", "--nocolor", "ansible/site.yml", "roles"],
        env=ansible_env(),
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Profile 'production' was required, and it passed" in done.stdout + done.stderr


def test_every_role_has_the_galaxy_layout() -> None:
    for role in ROLE_NAMES:
        for part in ("defaults/main.yml", "tasks/main.yml", "handlers/main.yml", "meta/main.yml"):
            assert (ROLES / role / part).is_file(), f"roles/{role}/{part} is missing"
        assert any((ROLES / role / "templates").iterdir()), f"roles/{role}/templates is empty"
        meta = yaml.safe_load((ROLES / role / "meta" / "main.yml").read_text())
        assert meta["galaxy_info"]["role_name"] == role


def test_site_playbook_has_a_play_per_node_role() -> None:
    plays = yaml.safe_load((ANSIBLE / "site.yml").read_text())
    roles_by_group = {play["hosts"]: play.get("roles", []) for play in plays}
    assert roles_by_group["metastore"] == ["metastore"]
    assert roles_by_group["broker"] == ["rabbitmq"]
    assert roles_by_group["zookeeper"] == ["zookeeper"]
    assert roles_by_group["master"] == ["common", "master"]
    assert roles_by_group["worker"] == ["common", "worker"]
    assert roles_by_group["loadbalancer"] == ["haproxy"]
    order = [play["hosts"] for play in plays]
    # the metastore exists before the masters migrate it, HAProxy comes last
    assert order.index("metastore") < order.index("master") < order.index("worker")
    assert order[-1] == "loadbalancer"


@pytest.mark.parametrize(("role", "unit"), [(r, u) for r, units in UNITS.items() for u in units])
def test_rendered_units_pass_systemd_analyze_verify(role: str, unit: str, tmp_path: Path) -> None:
    analyze = tool("systemd-analyze", package="systemd")
    host = {"master": "master1", "worker": "worker1", "zookeeper": "infra1"}[role]
    # ExecStart must name an existing binary: point the venv at this checkout's
    variables = render_vars(role, INVENTORIES["vagrant"], host, tradewind_venv=str(VENV_BIN.parent))
    text = render(role, f"{unit}.j2", variables)
    path = tmp_path / unit
    path.write_text(text)
    done = run([analyze, "verify", "--man=no", str(path)], cwd=tmp_path, timeout=60)
    output = (done.stdout + done.stderr).strip()
    assert done.returncode == 0 and not output, output
    assert "Restart=on-failure" in text
    assert "After=network-online.target" in text and "Wants=network-online.target" in text


@pytest.mark.parametrize("inventory", sorted(INVENTORIES))
def test_rendered_haproxy_config_passes_haproxy_check(inventory: str, tmp_path: Path) -> None:
    haproxy = tool("haproxy", package="haproxy")
    topology = load_inventory(INVENTORIES[inventory])
    lb = topology.with_role("loadbalancer")[0].name
    text = render("haproxy", "haproxy.cfg.j2", render_vars("haproxy", INVENTORIES[inventory], lb))
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    done = run([haproxy, "-c", "-f", str(path)], timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    for master in topology.with_role("master"):
        assert f"server {master.name} {master.address}:" in text
    assert "option httpchk GET /health" in text


@pytest.mark.parametrize("inventory", sorted(INVENTORIES))
def test_haproxy_serves_the_masters_flower_when_enabled(inventory: str, tmp_path: Path) -> None:
    haproxy = tool("haproxy", package="haproxy")
    topology = load_inventory(INVENTORIES[inventory])
    lb = topology.with_role("loadbalancer")[0].name
    variables = render_vars("haproxy", INVENTORIES[inventory], lb, tradewind_flower_enabled=True)
    text = render("haproxy", "haproxy.cfg.j2", variables)
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    done = run([haproxy, "-c", "-f", str(path)], timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "use_backend tradewind_flower if flower" in text
    assert "option httpchk GET /flower/healthcheck" in text
    for master in topology.with_role("master"):
        assert f"server {master.name} {master.address}:5555 check" in text


def test_single_node_webserver_does_not_take_haproxys_port() -> None:
    variables = render_vars("haproxy", INVENTORIES["local"], "localhost")
    text = render("haproxy", "haproxy.cfg.j2", variables)
    assert "bind :8080" in text
    assert "server localhost 127.0.0.1:8081 check" in text


def test_zookeeper_config_lists_the_ensemble(tmp_path: Path) -> None:
    variables = render_vars("zookeeper", INVENTORIES["vagrant"], "infra1")
    text = render("zookeeper", "zoo.cfg.j2", variables)
    assert "server.1=192.168.56.10:2888:3888" in text
    assert "admin.enableServer=false" in text


@pytest.mark.parametrize(
    ("engine", "pgbouncer", "url"),
    [
        ("mariadb", False, "mysql+pymysql://tradewind:changeme1@192.168.56.10:3306/tradewind"),
        (
            "postgresql",
            False,
            "postgresql+psycopg://tradewind:changeme1@192.168.56.10:5432/tradewind",
        ),
        (
            "postgresql",
            True,
            "postgresql+psycopg://tradewind:changeme1@192.168.56.10:6432/tradewind",
        ),
    ],
)
def test_rendered_tradewind_toml_is_valid_settings(
    tmp_path: Path, engine: str, pgbouncer: bool, url: str
) -> None:
    """The common role's tradewind.toml, rendered by Ansible itself, loads as Settings."""
    playbook = tmp_path / "render.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "master1:worker1",
                    "gather_facts": False,
                    "vars_files": [
                        str(ANSIBLE / "group_vars" / "all.yml"),
                        str(ROLES / "common" / "defaults" / "main.yml"),
                        str(ROLES / "common" / "vars" / "main.yml"),
                    ],
                    "tasks": [
                        {
                            "name": "Render tradewind.toml",
                            "ansible.builtin.template": {
                                "src": str(ROLES / "common" / "templates" / "tradewind.toml.j2"),
                                "dest": str(tmp_path / "{{ inventory_hostname }}.toml"),
                                "mode": "0600",
                            },
                            "delegate_to": "localhost",
                        }
                    ],
                }
            ]
        )
    )
    done = run(
        [
            tool("ansible-playbook", package="ansible-core (pip)"),
            "-i",
            str(INVENTORIES["vagrant"]),
            "-c",
            "local",
            "-e",
            json.dumps(
                {
                    "ansible_python_interpreter": sys.executable,
                    "playbook_dir": "/x",
                    "metastore_engine": engine,
                    "metastore_pgbouncer": pgbouncer,
                }
            ),
            str(playbook),
        ],
        env=ansible_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for host, address in (("master1", "192.168.56.11"), ("worker1", "192.168.56.21")):
        home = tmp_path / host
        home.mkdir()
        (home / "tradewind.toml").write_text((tmp_path / f"{host}.toml").read_text())
        tomllib.loads((home / "tradewind.toml").read_text())
        settings = load_settings(env={}, home=home)
        assert settings.core.executor == "celery"
        assert settings.core.hostname == address
        assert settings.metastore.url == url
        assert settings.metastore.pgbouncer is pgbouncer
        assert settings.celery.broker_urls == [
            "amqp://tradewind:changeme2@192.168.56.10:5672/tradewind"
        ]
        assert settings.ha.election == "zookeeper"
        assert settings.ha.zookeeper_hosts == ["192.168.56.10:2181"]
        assert settings.webserver.base_url == "http://192.168.56.10:8080"
        assert settings.webserver.secret_key and settings.core.fernet_key
        # Flower, where enabled, sits behind HAProxy's /flower/ and the webserver's users
        assert (settings.flower.auth, settings.flower.url_prefix) == ("webserver", "flower")
        assert settings.flower.proxied is True
        assert (settings.triggerer.capacity, settings.triggerer.health_timeout) == (1000, 30.0)


def test_vagrantfile_validates_without_a_provider() -> None:
    vagrant = tool("vagrant", package="vagrant")
    done = run(
        [vagrant, "validate", "--ignore-provider"],
        env={"VAGRANT_CHECKPOINT_DISABLE": "1"},
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for node in load_inventory(INVENTORIES["vagrant"]).nodes:
        assert f"==> {node.name}:" in done.stdout
