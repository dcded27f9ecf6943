"""``tradewind haproxy``: render a config for an inventory, check one, edit one in place.

Every config these tests produce is also given to the real ``haproxy -c``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from cluster.cli import main as entry
from cluster.deploy.haproxy import HAProxyOptions, Webserver, render_config, webservers
from cluster.deploy.haproxy_check import check_config
from cluster.deploy.haproxy_edit import add_server, remove_server
from cluster.deploy.haproxy_parse import parse_config
from cluster.deploy.haproxy_validate import find_haproxy, validate_text
from cluster.deploy.topology import load_inventory, parse_inventory
from cluster.errors import AlreadyExistsError, ConfigError, NotFoundError

REPO = Path(__file__).resolve().parents[3]
VAGRANT = REPO / "ansible/inventories/vagrant/hosts.yml"
LOCAL = REPO / "ansible/inventories/local/hosts.yml"
REFERENCE = REPO / "configs/haproxy/haproxy.cfg"
OPTIONS = HAProxyOptions(stats_password="s3cret-pass")


@dataclass(frozen=True)
class Exit:
    code: int
    out: str
    err: str


@pytest.fixture
def tradewind(capsys: pytest.CaptureFixture[str]):
    """Run the real entry point and return what a user would see."""

    def run(*args: str | Path) -> Exit:
        capsys.readouterr()
        with pytest.raises(SystemExit) as ended:
            entry.main([str(a) for a in args])
        captured = capsys.readouterr()
        code = ended.value.code
        return Exit(code if isinstance(code, int) else 1, captured.out, captured.err)

    return run


@pytest.fixture(scope="module")
def haproxy() -> str:
    found = find_haproxy()
    if found is None:
        pytest.fail("haproxy is needed by this test: run scripts/install-deps")
    return found


def inventory(tmp_path: Path, masters: dict[str, dict[str, object]], **all_vars: object) -> Path:
    path = tmp_path / "hosts.yml"
    document = {"all": {"vars": all_vars, "children": {"master": {"hosts": masters}}}}
    path.write_text(yaml.safe_dump(document))
    return path


def vagrant_config() -> str:
    return render_config(webservers(load_inventory(VAGRANT)), HAProxyOptions("change-me"))


# --- render -------------------------------------------------------------------------


def test_the_reference_config_is_what_render_makes_for_the_vagrant_cluster(tradewind) -> None:
    done = tradewind(
        "haproxy",
        "render",
        "--inventory",
        VAGRANT,
        "--stats-password",
        "change-me",
        "--flower-port",
        "5555",
    )
    assert done.code == 0, done.err
    assert done.out == REFERENCE.read_text()


def test_flower_is_served_under_its_path_only_when_given_a_port(haproxy: str) -> None:
    servers = webservers(load_inventory(VAGRANT))
    assert "flower" not in render_config(servers, HAProxyOptions("change-me"))
    parsed = parse_config(text := render_config(servers, HAProxyOptions("x", flower_port=5555)))
    backend = parsed.backend("tradewind_flower")
    assert backend is not None
    assert [s.endpoint for s in backend.servers] == ["192.168.56.11:5555", "192.168.56.12:5555"]
    assert backend.has_line("option httpchk GET /flower/healthcheck")
    assert "use_backend tradewind_flower if flower" in text
    assert validate_text(text, haproxy=haproxy)


def test_a_rendered_config_serves_every_master_with_health_checks(haproxy: str) -> None:
    text = vagrant_config()
    parsed = parse_config(text)
    backend = parsed.backend("tradewind_webservers")
    assert backend is not None
    assert [(s.name, s.endpoint, "check" in s.flags) for s in backend.servers] == [
        ("master1", "192.168.56.11:8080", True),
        ("master2", "192.168.56.12:8080", True),
    ]
    for line in (
        "option httpchk GET /health",
        "http-check expect status 200",
        "default-server inter 500ms fall 2 rise 1 maxconn 256",
    ):
        assert backend.has_line(line), line
    (defaults,) = parsed.defaults
    for line in ("retries 2", "option redispatch", "timeout check 2s", "retry-on conn-failure"):
        assert defaults.has_line(line), line
    (stats,) = parsed.listens
    assert stats.has_line("stats auth admin:change-me")
    assert parsed.routes_to("tradewind_webservers")
    assert check_config(parsed, webservers(load_inventory(VAGRANT))) == []
    assert validate_text(text, haproxy=haproxy)


def test_the_webserver_port_comes_from_host_group_or_default(tmp_path: Path) -> None:
    path = inventory(
        tmp_path,
        {
            "m1": {"ansible_host": "127.0.1.1"},
            "m2": {"ansible_host": "127.0.1.2", "tradewind_webserver_port": 9001},
        },
        tradewind_webserver_port=8081,
    )
    found = webservers(load_inventory(path))
    assert found == [Webserver("m1", "127.0.1.1", 8081), Webserver("m2", "127.0.1.2", 9001)]
    plain = parse_inventory({"master": {"hosts": {"m": {"ansible_host": "10.0.0.1"}}}})
    assert webservers(plain, default_port=7000) == [Webserver("m", "10.0.0.1", 7000)]


def test_the_single_node_inventory_keeps_the_webserver_beside_haproxy(haproxy: str) -> None:
    servers = webservers(load_inventory(LOCAL))
    assert [s.endpoint for s in servers] == ["127.0.0.1:8081"]
    assert validate_text(render_config(servers, OPTIONS), haproxy=haproxy)


def test_render_writes_a_file_with_the_password_from_a_file(tmp_path: Path, tradewind) -> None:
    secret = tmp_path / "stats.secret"
    secret.write_text("from-a-file\n")
    out = tmp_path / "haproxy.cfg"
    done = tradewind(
        "haproxy", "render", "-i", VAGRANT, "--stats-password-file", secret,
        "--bind", "127.0.0.1:18080", "--stats-bind", "127.0.0.1:11936", "-o", out,
    )  # fmt: skip
    assert done.code == 0, done.err
    text = out.read_text()
    assert "stats auth admin:from-a-file\n" in text
    assert "bind 127.0.0.1:18080\n" in text and "bind 127.0.0.1:11936\n" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "needs a password"),
        (("--stats-password", "two words"), "may not contain whitespace"),
        (("--stats-password", "x", "--bind", "8080"), "expected HOST:PORT"),
        (("--stats-password", "x", "--stats-socket", "relative.sock"), "absolute path"),
    ],
)
def test_render_refuses_bad_options_in_one_line(tradewind, args, message) -> None:
    done = tradewind("haproxy", "render", "-i", VAGRANT, *args)
    assert done.code != 0
    assert len(done.err.splitlines()) == 1 and message in done.err
    assert done.out == ""


@pytest.mark.parametrize(
    ("masters", "message"),
    [
        ({}, "no hosts"),
        ({"m1": {"tradewind_webserver_port": "http"}}, "not a TCP port"),
        ({"bad name": {"ansible_host": "10.0.0.1"}}, "master name"),
    ],
)
def test_inventories_haproxy_cannot_serve_are_clear_errors(tmp_path, masters, message) -> None:
    with pytest.raises(ConfigError, match=message):
        webservers(load_inventory(inventory(tmp_path, masters)))


def test_an_inventory_without_masters_is_refused() -> None:
    topology = parse_inventory({"worker": {"hosts": {"w1": {}}}})
    with pytest.raises(ConfigError, match="no hosts in the 'master' group"):
        webservers(topology)


# --- check --------------------------------------------------------------------------


def test_check_accepts_the_reference_config(tradewind) -> None:
    done = tradewind("haproxy", "check", REFERENCE, "--inventory", VAGRANT)
    assert done.code == 0, done.out + done.err
    assert "OK, 2 webserver(s)" in done.out


def test_check_names_every_problem_on_its_own_line(tmp_path: Path, tradewind) -> None:
    text = (
        vagrant_config()
        .replace("server master1 192.168.56.11:8080 check", "server master1 192.168.56.99:8080")
        .replace("server master2 192.168.56.12:8080 check\n", "")
        .replace("    option httpchk GET /health\n", "")
        + "    server\n"
    )
    text = text.replace("stats auth", "server stray 10.9.9.9:80 check\n    stats auth")
    text = text.replace(
        "    default-server inter",
        "    server intruder 10.0.0.66:8080 check\n    default-server inter",
    )
    config = tmp_path / "haproxy.cfg"
    config.write_text(text)
    done = tradewind("haproxy", "check", config, "--inventory", VAGRANT)
    assert done.code == 1
    lines = done.out.splitlines()
    expected = [
        "does not check 'GET /health'",
        "server master1 points to 192.168.56.99:8080, the inventory says 192.168.56.11:8080",
        "server master1 has no health check",
        "master master2 (192.168.56.12:8080) is not a server of backend 'tradewind_webservers'",
        "server intruder (10.0.0.66:8080) is not a master in the inventory",
    ]
    for fragment in expected:
        assert sum(fragment in line for line in lines) == 1, (fragment, lines)
    assert all(line.startswith(f"{config}: ") for line in lines)


def test_check_wants_the_backend_and_a_frontend_using_it() -> None:
    servers = webservers(load_inventory(VAGRANT))
    renamed = parse_config(
        vagrant_config().replace("backend tradewind_webservers", "backend other")
    )
    assert check_config(renamed, servers) == [
        "no backend 'tradewind_webservers' (backends in the file: other, stats)"
    ]
    unrouted = parse_config(vagrant_config().replace("default_backend tradewind_webservers", ""))
    assert check_config(unrouted, servers) == [
        "no frontend sends traffic to backend 'tradewind_webservers' (default_backend)"
    ]


def test_check_reports_what_haproxy_itself_refuses(tmp_path: Path, tradewind) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text(vagrant_config().replace("timeout check 2s", "timeout check soon"))
    done = tradewind("haproxy", "check", config, "-i", VAGRANT)
    assert done.code == 1
    assert "haproxy -c refused" in done.out and "timeout check" in done.out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("frontend web\n    bind :8080\n", "HOST:PORT"),
        ("peers mypeers\n    peer a 10.0.0.1:1024\n", "cannot parse"),
        ("", "is empty"),
    ],
)
def test_check_of_an_unreadable_config_is_one_line(tmp_path, tradewind, text, message) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text(text)
    done = tradewind("haproxy", "check", config, "-i", VAGRANT)
    assert done.code != 0
    assert len(done.err.splitlines()) == 1 and message in done.err


# --- add-server / remove-server -----------------------------------------------------


def test_add_and_remove_server_keep_the_rest_byte_for_byte(tmp_path: Path, tradewind) -> None:
    original = vagrant_config().replace(
        "    server master1", "    # the first master\n    server master1"
    )
    config = tmp_path / "haproxy.cfg"
    config.write_text(original)
    config.chmod(0o640)
    added = tradewind("haproxy", "add-server", config, "master3", "192.168.56.13:8080")
    assert added.code == 0, added.err
    text = config.read_text()
    assert text == original.replace(
        "    server master2 192.168.56.12:8080 check\n",
        "    server master2 192.168.56.12:8080 check\n    server master3 192.168.56.13:8080 check\n",
    )
    assert config.stat().st_mode & 0o777 == 0o640
    removed = tradewind("haproxy", "remove-server", config, "master3")
    assert removed.code == 0, removed.err
    assert config.read_text() == original


def test_add_server_to_a_backend_without_servers() -> None:
    text = "frontend web\n    bind *:80\n    default_backend be\n\nbackend be\n\tbalance roundrobin\n\n# end\n"
    edited = add_server(text, Webserver("m1", "10.0.0.1", 8080), backend="be")
    assert edited == text.replace("roundrobin\n", "roundrobin\n\tserver m1 10.0.0.1:8080 check\n")
    assert remove_server(edited, "m1", backend="be") == text


def test_edits_refuse_duplicates_missing_servers_and_backends() -> None:
    text = vagrant_config()
    with pytest.raises(AlreadyExistsError, match="already has a server 'master1'"):
        add_server(text, Webserver("master1", "10.0.0.1", 8080))
    with pytest.raises(NotFoundError, match=r"no server 'master9' \(servers: master1, master2\)"):
        remove_server(text, "master9")
    with pytest.raises(NotFoundError, match="no backend 'nope'"):
        add_server(text, Webserver("m", "10.0.0.1", 8080), backend="nope")


def test_a_failed_edit_leaves_the_file_alone(tmp_path: Path, tradewind) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text(vagrant_config())
    for args in (
        ("add-server", config, "master1", "10.0.0.1:8080"),
        ("add-server", config, "master3", "not-an-endpoint"),
        ("add-server", config, "bad/name", "10.0.0.1:8080"),
        ("remove-server", config, "master9"),
        ("remove-server", tmp_path / "missing.cfg", "master1"),
    ):
        done = tradewind("haproxy", *args)
        assert done.code != 0 and len(done.err.splitlines()) == 1, (args, done)
    assert config.read_text() == vagrant_config()


def test_an_edit_haproxy_refuses_is_not_written(tmp_path: Path, tradewind, haproxy) -> None:
    broken = vagrant_config().replace("timeout check 2s", "timeout check soon")
    config = tmp_path / "haproxy.cfg"
    config.write_text(broken)
    done = tradewind("haproxy", "add-server", config, "master3", "10.0.0.3:8080")
    assert done.code != 0 and "haproxy -c refused" in done.err
    assert str(config) in done.err
    assert config.read_text() == broken
    assert [p.name for p in tmp_path.iterdir()] == ["haproxy.cfg"]
