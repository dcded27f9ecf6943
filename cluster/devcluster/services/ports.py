"""Finding a free TCP port below the ephemeral range for a private service.

Ports at or above 32768 may be handed to outgoing connections at any moment (a
RabbitMQ node bound there crashed), so services pick from a fixed range below it.
"""

from __future__ import annotations

import random
import socket

from cluster.errors import TradewindError

LOW_PORT = 20000
HIGH_PORT = 32000


def is_port_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be bound right now (nobody listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1", *, low: int = LOW_PORT, high: int = HIGH_PORT) -> int:
    """A port in ``[low, high)`` that is free on ``host``, chosen at random.

    Random rather than sequential so that test runs started at the same moment by
    different people rarely try the same port. The port is only free when checked:
    the service that binds it still reports a clash clearly if it lost the race.

    :raises TradewindError: when 200 random tries found nothing free.
    """
    for _ in range(200):
        port = random.randrange(low, high)
        if is_port_free(host, port):
            return port
    raise TradewindError(f"no free TCP port in {low}-{high} on {host}")
