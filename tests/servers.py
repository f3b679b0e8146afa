"""A RabbitMQ node and a dev store of a run's own, for the chaos run and the
pipeline bench: they restart and stop their servers, which must never be the
developer's (or another test's) shared ones.

The RabbitMQ node is a second Erlang node beside the shared one (its own node
name, AMQP and distribution ports, data, logs and cookie), started
with Debian's rabbitmq-server -detached. Given a metrics port, it also runs the
Prometheus plugin there, on loopback. The store is the FerretDB binary that
scripts/servers.sh builds, on a port and a directory of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import ROOT, ensure_servers

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _wait(what: str, check: object, timeout_s: float) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise RuntimeError(f"{what} did not come up within {timeout_s}s")


def ferretdb_binary() -> Path:
    """The store binary scripts/servers.sh builds (built now if it is missing)."""
    script = ROOT / "scripts" / "servers.sh"
    found = subprocess.run([str(script), "store-binary"], capture_output=True, check=True)
    return Path(found.stdout.decode().strip())


def rabbit_tool(name: str) -> str:
    """Debian's scripts under /usr/lib/rabbitmq/bin run as any user; the wrappers
    in /usr/sbin would switch to the rabbitmq user and lose our environment."""
    if (RABBIT_BIN / name).exists():
        return str(RABBIT_BIN / name)
    if shutil.which(name) is None:
        ensure_servers()
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found")
    return str(Path(found).resolve().parent / name)


class Server:
    """A server a run stops, kills and starts again (in a thread: each call blocks)."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        raise NotImplementedError

    async def restart(self, down_s: float = 1.0) -> None:
        await asyncio.to_thread(self.stop)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(self.start)

    async def kill_and_start(self, down_s: float = 1.0) -> None:
        await asyncio.to_thread(self.kill)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(self.start)


@dataclass
class OwnBroker(Server):
    """A RabbitMQ node of our own."""

    base: Path
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    node: str = field(default_factory=lambda: f"hotline-chaos-{uuid.uuid4().hex[:6]}@localhost")
    # The Prometheus plugin's port, or None for no plugin at all.
    metrics_port: int | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    @property
    def metrics_url(self) -> str:
        assert self.metrics_port is not None, "this node runs no metrics plugin"
        return f"http://127.0.0.1:{self.metrics_port}"

    def _env(self) -> dict[str, str]:
        home = self.base / "home"
        home.mkdir(parents=True, exist_ok=True)
        plugins = self.base / "enabled_plugins"
        config = self.base / "rabbitmq.conf"
        if self.metrics_port is None:
            plugins.write_text("[].\n")
            config.write_text("")
        else:
            # Bound to loopback by address: the plugin's default listener is
            # dual-stack, which a host without IPv6 may refuse.
            plugins.write_text("[rabbitmq_prometheus].\n")
            config.write_text(
                f"prometheus.tcp.port = {self.metrics_port}\nprometheus.tcp.ip = 127.0.0.1\n"
            )
        return {
            **os.environ,
            "HOME": str(home),  # the Erlang cookie of this node and its tools
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_PID_FILE": str(self.base / "rabbit.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
            "RABBITMQ_CONFIG_FILE": str(config),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
        }

    def _tool(self, name: str, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [rabbit_tool(name), "-n", self.node, "-q", *args],
            env=self._env(),
            cwd=self.base,
            capture_output=True,
            timeout=120,
            check=False,
        )

    def start(self) -> None:
        subprocess.run(
            [rabbit_tool("rabbitmq-server"), "-detached"],
            env=self._env(),
            cwd=self.base,
            capture_output=True,
            check=False,
        )
        _wait(
            f"rabbitmq node {self.node}",
            lambda: (
                self._tool("rabbitmq-diagnostics", "ping").returncode == 0 and port_open(self.port)
            ),
            90,
        )
        if self.metrics_port is not None:
            port = self.metrics_port
            try:
                _wait(f"rabbitmq metrics on :{port}", lambda: port_open(port), 60)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}; the node's log ends:\n{self.log_tail()}") from exc

    def log_tail(self, lines: int = 40) -> str:
        logs = sorted((self.base / "log").glob("*.log"))
        text = "\n".join(p.read_text(errors="replace") for p in logs)
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the node and wait until it is gone (kill it if it will not go)."""
        self._tool("rabbitmqctl", "stop")
        pid_file = self.base / "rabbit.pid"
        if pid_file.exists():
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
            pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the node: no shutdown and no flush, as a crash of the
        process would leave it."""
        pid_file = self.base / "rabbit.pid"
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGKILL)
        _wait(f"rabbitmq node {self.node} to die", lambda: not _alive(pid), 30)
        pid_file.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child of ours stays a zombie until reaped: not alive either.
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


@dataclass
class OwnStore(Server):
    """A FerretDB process of our own."""

    base: Path
    port: int = field(default_factory=free_port)
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        log = (self.base / "ferretdb.log").open("ab")
        self._proc = subprocess.Popen(
            [
                str(ferretdb_binary()),
                "-listen",
                f"127.0.0.1:{self.port}",
                "-dir",
                str(self.base / "store"),
            ],
            stdout=log,
            stderr=log,
            # As scripts/servers.sh starts the dev store: Go's collector less often.
            env={**os.environ, "GOGC": os.environ.get("HOTLINE_STORE_GOGC", "400")},
        )
        log.close()
        _wait("the dev store", lambda: port_open(self.port), 30)

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def kill(self) -> None:
        """SIGKILL the store: no shutdown, whatever it had not written is gone."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.kill()
        self._proc.wait()


@dataclass
class OwnServers:
    broker: OwnBroker
    store: OwnStore

    def env(self) -> dict[str, str]:
        """What points a service process (and our own clients) at these servers."""
        return {"HOTLINE_AMQP_URL": self.broker.url, "HOTLINE_MONGO_URL": self.store.url}

    def pids(self) -> dict[str, int]:
        """The processes of the broker (its Erlang VM) and the store, by name."""
        pids = {"rabbitmq": int((self.broker.base / "rabbit.pid").read_text().strip())}
        if self.store.pid is not None:
            pids["ferretdb"] = self.store.pid
        return pids


@contextlib.contextmanager
def own_servers() -> Iterator[OwnServers]:
    """Start a RabbitMQ node and a store of our own; stop both (always) after."""
    with tempfile.TemporaryDirectory(prefix="hotline-own-") as tmp:
        base = Path(tmp)
        (base / "rabbit").mkdir()
        (base / "store").mkdir()
        servers = OwnServers(OwnBroker(base / "rabbit"), OwnStore(base / "store"))
        try:
            servers.broker.start()
            servers.store.start()
            yield servers
        finally:
            servers.store.stop()
            servers.broker.stop()


@contextlib.contextmanager
def own_broker(*, metrics: bool = False) -> Iterator[OwnBroker]:
    """Start a RabbitMQ node of our own (with the Prometheus plugin if asked);
    stop it (always) after."""
    with tempfile.TemporaryDirectory(prefix="hotline-own-") as tmp:
        broker = OwnBroker(Path(tmp), metrics_port=free_port() if metrics else None)
        try:
            broker.start()
            yield broker
        finally:
            broker.stop()
