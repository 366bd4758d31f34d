"""A real Redis Cluster for the tests: 3 primaries and 3 replicas of Debian's redis-server on free ports."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

REDIS_CLI = shutil.which("redis-cli")


def cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + 10000 > 65535:
            continue
        try:
            with socket.socket() as bus:
                bus.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port


class RedisClusterProcesses:
    """Six ``redis-server --cluster-enabled yes`` processes joined by ``redis-cli --cluster create``."""

    def __init__(self, directory: Path, nodes: int = 6) -> None:
        self.directory = directory
        self.ports = [cluster_port() for _ in range(nodes)]
        self.url = f"redis+cluster://127.0.0.1:{self.ports[0]}/0"
        self._processes: dict[int, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        for port in self.ports:
            self.start_node(port)
        assert REDIS_CLI is not None
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(
            [REDIS_CLI, "--cluster", "create", *nodes, "--cluster-replicas", "1", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 30
        while not all(self._ok(port) for port in self.ports) or not self._replicated():
            assert time.monotonic() < deadline, "the cluster did not come up"
            time.sleep(0.1)

    def _replicated(self) -> bool:
        """Whether every slot range has a replica, in sync with its primary."""
        ranges = self.node(self.ports[0]).execute_command("CLUSTER", "SLOTS")
        if not ranges or any(len(nodes) < 2 for _, _, *nodes in ranges):
            return False
        replicas = [port for port in self.ports if self.node(port).info("replication")["role"] == "slave"]
        return all(self.node(port).info("replication")["master_link_status"] == "up" for port in replicas)

    def start_node(self, port: int) -> None:
        node = self.directory / str(port)
        node.mkdir(exist_ok=True)
        self._processes[port] = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "1000",
                "--save",
                "",
                "--appendonly",
                "no",
                # replicas sync at once, and a node stops at once (not after waiting on its replicas)
                "--repl-diskless-sync-delay",
                "0",
                "--shutdown-timeout",
                "0",
            ],
            cwd=node,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=port, socket_connect_timeout=0.5).ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.02)

    @staticmethod
    def _ok(port: int) -> bool:
        info = redis.Redis(port=port, decode_responses=True).execute_command("CLUSTER", "INFO")
        return "cluster_state:ok" in str(info)

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, decode_responses=True)

    def primaries(self) -> list[int]:
        return [port for port in self.ports if self.node(port).info("replication")["role"] == "master"]

    def kill_node(self, port: int) -> None:
        """SIGKILL one node, as a crashed machine."""
        process = self._processes.pop(port)
        process.kill()
        process.wait(10)

    def stop(self) -> None:
        for process in self._processes.values():
            process.terminate()
        for process in self._processes.values():
            process.wait(10)
        self._processes.clear()
