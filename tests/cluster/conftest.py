"""Fixtures of the multi-node tests: a real ZooKeeper ensemble and a RabbitMQ node."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.devcluster.services.rabbitmq import RabbitMQCluster
from cluster.devcluster.services.zookeeper import ZooKeeperEnsemble
from tests.cluster.ha_harness import start_zookeeper
from tests.integration.celery_harness import start_rabbitmq


@pytest.fixture(scope="session")
def zookeeper(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperEnsemble]:
    """Three ZooKeeper nodes shared by the tests that do not harm them."""
    ensemble = start_zookeeper(tmp_path_factory.mktemp("zookeeper"))
    yield ensemble
    ensemble.stop()


@pytest.fixture
def own_zookeeper(tmp_path: Path) -> Iterator[ZooKeeperEnsemble]:
    """Three ZooKeeper nodes for one test that kills some of them."""
    ensemble = start_zookeeper(tmp_path / "zookeeper")
    yield ensemble
    ensemble.stop()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitMQCluster]:
    """One RabbitMQ node for the HA tests (the broker's own failures are tested elsewhere)."""
    node = start_rabbitmq(tmp_path_factory.mktemp("broker"), nodes=1)
    yield node
    node.stop()
