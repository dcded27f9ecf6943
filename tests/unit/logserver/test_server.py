"""The worker's log server over real HTTP: signed reads, refusals, and tailing a growing log."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.errors import ConfigError
from cluster.logserver.server import OFFSET_HEADER, SIZE_HEADER, LogServer
from cluster.logserver.signing import sign
from tests.clocks import FakeClock

KEY = "cluster-secret"
LOG = "dag_id=etl/run_id=manual__2024-01-01T00:00:00+00:00/task_id=load/attempt=1.log"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    folder = tmp_path / "logs"
    (folder / LOG).parent.mkdir(parents=True)
    (folder / LOG).write_text("first line\n")
    (tmp_path / "secret.txt").write_text("not a log\n")
    return folder


@pytest.fixture
def server(logs: Path, clock: FakeClock) -> Iterator[LogServer]:
    running = LogServer(
        logs, key=KEY, host="127.0.0.1", port=0, clock=clock.epoch, poll_interval=0.02
    )
    running.start()
    yield running
    running.stop()


def get(url: str) -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def signed_url(server: LogServer, clock: FakeClock, path: str = LOG, *, offset: int = 0) -> str:
    return sign(path, key=KEY, now=clock.epoch(), ttl=30).url(server.url, offset=offset)


def test_a_signed_request_gets_the_log(server: LogServer, clock: FakeClock) -> None:
    status, body, headers = get(signed_url(server, clock))

    assert status == 200
    assert body == b"first line\n"
    assert headers[OFFSET_HEADER] == headers[SIZE_HEADER] == str(len(body))


def test_an_unsigned_request_is_forbidden(server: LogServer) -> None:
    status, body, _ = get(f"{server.url}/log/{LOG}")

    assert status == 403
    assert b"first line" not in body


def test_an_expired_request_is_forbidden(server: LogServer, clock: FakeClock) -> None:
    url = signed_url(server, clock)
    clock.advance(31)

    status, body, _ = get(url)

    assert status == 403
    assert b"expired" in body


def test_a_request_signed_with_another_key_is_forbidden(
    server: LogServer, clock: FakeClock
) -> None:
    url = sign(LOG, key="other", now=clock.epoch(), ttl=30).url(server.url)

    assert get(url)[0] == 403


@pytest.mark.parametrize("path", ["../secret.txt", "dag_id=etl/../../secret.txt", "/etc/passwd"])
def test_paths_leaving_the_log_folder_are_refused_even_when_signed(
    server: LogServer, clock: FakeClock, path: str
) -> None:
    status, body, _ = get(signed_url(server, clock, path))

    assert status == 403
    assert b"not a log" not in body and b"root:" not in body


def test_a_symlink_out_of_the_log_folder_is_refused(
    server: LogServer, clock: FakeClock, logs: Path
) -> None:
    (logs / "escape.log").symlink_to(logs.parent / "secret.txt")

    assert get(signed_url(server, clock, "escape.log"))[0] == 403


def test_a_missing_log_is_not_found(server: LogServer, clock: FakeClock) -> None:
    assert get(signed_url(server, clock, "dag_id=etl/nothing.log"))[0] == 404


def test_a_growing_log_is_tailed_from_the_offset(
    server: LogServer, clock: FakeClock, logs: Path
) -> None:
    _, first, headers = get(signed_url(server, clock))
    offset = int(headers[OFFSET_HEADER])
    with (logs / LOG).open("a") as log:
        log.write("second line\n")

    _, second, headers = get(signed_url(server, clock, offset=offset))
    _, nothing_new, again = get(signed_url(server, clock, offset=int(headers[OFFSET_HEADER])))

    assert (first, second, nothing_new) == (b"first line\n", b"second line\n", b"")
    assert again[OFFSET_HEADER] == headers[OFFSET_HEADER] == str(len(first + second))


def test_a_bad_offset_is_a_bad_request(server: LogServer, clock: FakeClock) -> None:
    url = sign(LOG, key=KEY, now=clock.epoch(), ttl=30).url(server.url) + "&offset=-3"

    assert get(url)[0] == 400


def test_health_needs_no_signature(server: LogServer) -> None:
    assert get(f"{server.url}/health")[:2] == (200, b"ok\n")


def test_a_server_without_the_cluster_secret_does_not_start(logs: Path) -> None:
    with pytest.raises(ConfigError, match="secret_key"):
        LogServer(logs, key="", host="127.0.0.1", port=0)
