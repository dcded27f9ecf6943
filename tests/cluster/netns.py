"""Network namespaces for partition tests: an infra namespace with a bridge, and one
namespace per node joined to it by a veth pair (TESTING.md, "Network partitions").

Everything that talks across the bridge runs inside a namespace; before anything is
sent, :meth:`NamespaceNet.assert_routes` checks each node routes the subnet through its
own veth, so no packet can leave the machine. A partition is an nftables drop inside
one node's namespace; healing deletes that table.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Sequence

SUBNET = "10.231.0"
INFRA_ADDRESS = f"{SUBNET}.1"


def run(argv: Sequence[str], *, input_text: str | None = None) -> str:
    done = subprocess.run(
        list(argv), capture_output=True, text=True, input=input_text, check=False, timeout=60
    )
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


class NamespaceNet:
    """``infra`` (bridge, ``10.231.0.1`` plus extra service addresses) and ``nodes``."""

    def __init__(self, nodes: int, *, extra_infra_addresses: int = 0) -> None:
        self.tag = uuid.uuid4().hex[:5]
        self.infra = f"tw{self.tag}i"
        self.nodes = [f"tw{self.tag}n{n}" for n in range(1, nodes + 1)]
        self.node_addresses = [f"{SUBNET}.{100 + n}" for n in range(1, nodes + 1)]
        self.service_addresses = [f"{SUBNET}.{10 + n}" for n in range(1, extra_infra_addresses + 1)]
        self._created: list[str] = []

    def exec_prefix(self, namespace: str) -> list[str]:
        return ["ip", "netns", "exec", namespace]

    def create(self) -> NamespaceNet:
        self._add_namespace(self.infra)
        infra = self.exec_prefix(self.infra)
        run([*infra, "ip", "link", "set", "lo", "up"])
        run([*infra, "ip", "link", "add", "br0", "type", "bridge"])
        run([*infra, "ip", "addr", "add", f"{INFRA_ADDRESS}/24", "dev", "br0"])
        for address in self.service_addresses:
            run([*infra, "ip", "addr", "add", f"{address}/24", "dev", "br0"])
        run([*infra, "ip", "link", "set", "br0", "up"])
        for n, (namespace, address) in enumerate(
            zip(self.nodes, self.node_addresses, strict=True), start=1
        ):
            self._add_node(namespace, address, n)
        self.assert_routes()
        return self

    def _add_namespace(self, name: str) -> None:
        run(["ip", "netns", "add", name])
        self._created.append(name)

    def _add_node(self, namespace: str, address: str, n: int) -> None:
        self._add_namespace(namespace)
        inner, outer = f"tw{self.tag}v{n}", f"tw{self.tag}b{n}"
        # the pair is born inside the node's namespace: nothing is added to the root one
        node = self.exec_prefix(namespace)
        run([*node, "ip", "link", "add", inner, "type", "veth", "peer", "name", outer])
        run([*node, "ip", "link", "set", outer, "netns", self.infra])
        run([*node, "ip", "link", "set", "lo", "up"])
        run([*node, "ip", "addr", "add", f"{address}/24", "dev", inner])
        run([*node, "ip", "link", "set", inner, "up"])
        infra = self.exec_prefix(self.infra)
        run([*infra, "ip", "link", "set", outer, "master", "br0"])
        run([*infra, "ip", "link", "set", outer, "up"])

    def assert_routes(self) -> None:
        """Each namespace reaches the subnet through its own link, never a default route."""
        for n, namespace in enumerate(self.nodes, start=1):
            route = run([*self.exec_prefix(namespace), "ip", "route", "get", INFRA_ADDRESS])
            assert f"dev tw{self.tag}v{n}" in route, route
        route = run([*self.exec_prefix(self.infra), "ip", "route", "get", self.node_addresses[0]])
        assert "dev br0" in route, route

    def cut(self, namespace: str, addresses: Sequence[str]) -> None:
        """Drop everything ``namespace`` sends to ``addresses`` (a one-way partition that
        kills TCP both ways: nothing it sends arrives, not even acknowledgements)."""
        rules = (
            "table inet twpartition {\n"
            "  chain out { type filter hook output priority 0; policy accept;\n"
            f"    ip daddr {{ {', '.join(addresses)} }} drop\n"
            "  }\n"
            "  chain in { type filter hook input priority 0; policy accept;\n"
            f"    ip saddr {{ {', '.join(addresses)} }} drop\n"
            "  }\n"
            "}\n"
        )
        run([*self.exec_prefix(namespace), "nft", "-f", "-"], input_text=rules)

    def heal(self, namespace: str) -> None:
        run([*self.exec_prefix(namespace), "nft", "delete", "table", "inet", "twpartition"])

    def destroy(self) -> None:
        """Delete every namespace made here (their links go with them)."""
        for name in reversed(self._created):
            subprocess.run(["ip", "netns", "delete", name], check=False, timeout=60)
        self._created.clear()
