"""A real standalone Spark cluster on 127.0.0.1, and Spark sessions shared by the tests.

Why a real cluster: `local[*]` runs every task in the driver's JVM, so it cannot show that the
screening survives what a cluster does to it (closures and UDFs pickled to other Python
processes, rows shuffled between executors, a worker's own Python and import path). The
cluster is the one a site would start by hand: a master and two workers launched by
`spark-class` from pyspark's own `bin/`, each worker with one core and 1 GB, on free loopback
ports, their logs in a temporary folder. It starts once per test process (about 10 s) and
its three process groups (the workers' executors are in their groups) are killed at the end;
the teardown fails if any process of them is left.

Only one SparkContext can live in a Python process, and `SparkSession.builder.getOrCreate()`
hands back the running one whatever master is asked for. `spark_session_for` therefore keeps
one session per process and stops it before a session on another master is made, so a test
on the cluster can never silently run in a `local[2]` session left by another test (the
cluster tests also check the master's JSON for their application and its executors).

Where Java 17 or pyspark is missing the Spark tests are skipped, unless REQUIRE_SPARK=1
(`.ci/run` sets it): then they fail, saying what is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "LOCAL_MASTER",
    "SparkCluster",
    "missing_spark",
    "require_spark",
    "running_cluster",
    "spark_cluster",
    "spark_local",
    "spark_on_cluster",
    "spark_session_for",
    "stop_spark_session",
]

ROOT = Path(__file__).resolve().parents[1]
LOCAL_MASTER = "local[2]"
#: how long the master and its two workers may take to come up (about 10 s on the 2-core machine)
START_TIMEOUT = 90.0
WORKERS = 2


def missing_spark() -> str | None:
    """Why Spark cannot run here (no pyspark, no Java 17 or later), or None when it can."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install -e '.[spark]')"
    java = shutil.which("java", path=str(Path(os.environ["JAVA_HOME"]) / "bin")) if "JAVA_HOME" in os.environ else None
    java = java or shutil.which("java")
    if java is None:
        return "no java on PATH or in JAVA_HOME (pyspark 4 needs Java 17: apt-get install openjdk-17-jre-headless)"
    try:
        version = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60).stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{java} -version failed: {exc}"
    found = re.search(r'version "(\d+)', version)
    major = int(found.group(1)) if found else 0
    if major < 17:
        return f"{java} is Java {major or 'of an unknown version'}; pyspark 4 needs Java 17 or later"
    return None


def require_spark() -> None:
    """Skip the calling test where Spark cannot run, or fail it when REQUIRE_SPARK=1."""
    reason = missing_spark()
    if reason is None:
        return
    if os.environ.get("REQUIRE_SPARK") == "1":
        pytest.fail(f"REQUIRE_SPARK=1 but Spark cannot run here: {reason}", pytrace=False)
    pytest.skip(reason)


def _spark_home() -> Path:
    from pyspark.find_spark_home import _find_spark_home

    return Path(_find_spark_home())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SparkCluster:
    """A running standalone cluster: its URL for a session, its web UI, its logs."""

    url: str
    web_ui: str
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def status(self) -> dict[str, Any]:
        """The master's state as its web UI gives it (`/json/`: workers, applications, cores)."""
        with urllib.request.urlopen(f"{self.web_ui}/json/", timeout=5) as response:
            data: dict[str, Any] = json.load(response)
        return data

    def alive_workers(self) -> int:
        return sum(1 for worker in self.status().get("workers", []) if worker.get("state") == "ALIVE")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of every process's log, for a failure message."""
        out = []
        for name in self.processes:
            text = (self.logs / f"{name}.log").read_text(encoding="utf-8", errors="replace").splitlines()
            out.append(f"--- {name}.log ---\n" + "\n".join(text[-lines:]))
        return "\n".join(out)


def _environment(logs: Path) -> dict[str, str]:
    """The daemons' environment: loopback only, this Python for the executors' Python workers,
    this tree importable in them, no stray spark-defaults.conf, scratch space in `logs`."""
    conf = logs / "conf"
    conf.mkdir(exist_ok=True)
    python_path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {
        **os.environ,
        "SPARK_HOME": str(_spark_home()),
        "SPARK_CONF_DIR": str(conf),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOCAL_DIRS": str(logs / "scratch"),
        "SPARK_DAEMON_MEMORY": "512m",  # the master and worker daemons only; executors get their own 1 GB
        "PYSPARK_PYTHON": sys.executable,
        "PYTHONPATH": python_path,
    }


def _group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of a process group, from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry))
    return members


def _stop(processes: dict[str, subprocess.Popen[bytes]]) -> dict[str, list[int]]:
    """SIGTERM each process group (workers first), SIGKILL what is left after 20 s; what is
    still alive 5 s later (an orphan), by daemon and process id."""
    for name in sorted(processes, key=lambda n: n == "master"):
        with suppress(ProcessLookupError):
            os.killpg(processes[name].pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for process in processes.values():
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    for process in processes.values():
        # the leader may be gone while an executor of its group lives on: signal the group
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    deadline = time.monotonic() + 5
    while True:
        left = {name: pids for name, p in processes.items() if (pids := _group_members(p.pid))}
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


@contextmanager
def running_cluster(logs: Path, workers: int = WORKERS, timeout: float = START_TIMEOUT) -> Iterator[SparkCluster]:
    """A master and `workers` workers (1 core, 1 GB each) on 127.0.0.1, up until the block ends.

    Waits until the master's web UI lists every worker ALIVE (at most `timeout` seconds); a
    daemon that exits or a timeout is an error carrying the logs' last lines.
    """
    logs.mkdir(parents=True, exist_ok=True)
    spark_class = str(_spark_home() / "bin" / "spark-class")
    env = _environment(logs)
    port, web_port = _free_port(), _free_port()
    cluster = SparkCluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{web_port}", logs)

    def launch(name: str, *args: str) -> None:
        with (logs / f"{name}.log").open("wb") as log:
            # a group of its own, so the teardown reaches the JVM that spark-class execs and
            # every executor a worker starts
            cluster.processes[name] = subprocess.Popen(
                [spark_class, *args], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    try:
        launch(
            "master",
            "org.apache.spark.deploy.master.Master",
            *("--host", "127.0.0.1", "--port", str(port), "--webui-port", str(web_port)),
        )
        for n in range(1, workers + 1):
            work = logs / f"worker-{n}"
            work.mkdir(exist_ok=True)
            launch(
                f"worker-{n}",
                "org.apache.spark.deploy.worker.Worker",
                cluster.url,
                *("--cores", "1", "--memory", "1g", "--host", "127.0.0.1"),
                *("--webui-port", str(_free_port()), "--work-dir", str(work)),
            )
        deadline = time.monotonic() + timeout
        while True:
            exited = {n: p.returncode for n, p in cluster.processes.items() if p.poll() is not None}
            if exited:
                raise RuntimeError(f"Spark daemon exited while starting: {exited}\n{cluster.log_tail()}")
            try:
                if cluster.alive_workers() == workers:
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                pass  # the master's web UI is not up yet
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the standalone cluster did not show {workers} ALIVE workers within {timeout:.0f} s "
                    f"(logs in {logs})\n{cluster.log_tail()}"
                )
            time.sleep(0.5)
        yield cluster
    finally:
        left = _stop(cluster.processes)
        if left:
            raise RuntimeError(f"Spark processes left running after the cluster's teardown: {left} (logs in {logs})")


# One session per process (see the module's docstring): the master it runs on, and it.
_SESSION: dict[str, Any] = {}


def stop_spark_session() -> None:
    """Stop this process's session, if any (and any session pyspark still holds as active)."""
    from pyspark.sql import SparkSession

    current = _SESSION.pop("session", None)
    _SESSION.pop("master", None)
    if current is not None:
        current.stop()
    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()


def spark_session_for(master: str) -> SparkSession:
    """This process's Spark session on `master`, made once and reused while tests ask for the
    same master (a session costs about 8 s); one on another master is stopped first."""
    if _SESSION.get("master") == master:
        session: SparkSession = _SESSION["session"]
        return session
    stop_spark_session()
    # the executors' Python workers run this interpreter; the driver listens on loopback only
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    from kb.screening.spark import spark_session

    session = spark_session(master)  # the screening's own settings (exact decimals, ANSI)
    if session.sparkContext.master != master:
        raise RuntimeError(f"asked for a Spark session on {master}, got one on {session.sparkContext.master}")
    _SESSION.update(master=master, session=session)
    return session


@pytest.fixture(scope="session")
def _spark_sessions() -> Iterator[None]:
    """Stops the shared session when the test process ends."""
    yield
    if "session" in _SESSION:
        stop_spark_session()


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkCluster]:
    """A standalone master and two workers on 127.0.0.1 for the whole test process."""
    require_spark()
    with running_cluster(tmp_path_factory.mktemp("spark-cluster")) as cluster:
        yield cluster
        # a session on the cluster must end before its master does, or its driver keeps retrying
        if _SESSION.get("master") == cluster.url:
            stop_spark_session()


@pytest.fixture
def spark_local(_spark_sessions: None) -> SparkSession:
    """A `local[2]` session (both cores, no cluster), shared by the tests of this process."""
    require_spark()
    return spark_session_for(LOCAL_MASTER)


@pytest.fixture
def spark_on_cluster(spark_cluster: SparkCluster, _spark_sessions: None) -> SparkSession:
    """A session whose executors are the standalone cluster's two workers."""
    return spark_session_for(spark_cluster.url)
