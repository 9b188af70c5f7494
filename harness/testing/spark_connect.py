"""A real Spark Connect server on 127.0.0.1, for tests and benchmarks of ``--spark-remote``.

``SparkConnectServer`` runs pyspark's own ``sbin/start-connect-server.sh`` (the pip
package ships it; Spark needs Java 17 or later) in the foreground, in a process group of
its own, on free ports for gRPC and the Spark UI, with its warehouse, logs and pid file in
a temporary folder (never ``/tmp``'s shared pid file, so several can run at once)::

    with SparkConnectServer(env={"OPENAI_API_KEY": "sk-..."}) as server:
        subprocess.run(["harness", "run", ..., "--spark-remote", server.url])

Its environment is fixed when it starts, as a cluster's is: ``env`` is added to this
process's environment minus every ``SPARK_*``/``PYSPARK_*`` variable, and its Python
workers run this interpreter. ``stop()`` (or leaving the ``with``) ends the process group.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

__all__ = ["SparkConnectServer"]

DEFAULT_START_TIMEOUT_S = 420.0  # a JVM and a Spark context on a loaded 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class SparkConnectServer:
    """pyspark's Spark Connect server, started and stopped by the caller (see the module)."""

    def __init__(
        self,
        *,
        master: str = "local[2]",
        env: Mapping[str, str] | None = None,
        conf: Mapping[str, str] | None = None,
        folder: str | os.PathLike[str] | None = None,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
    ) -> None:
        self.master = master
        self.extra_env = dict(env or {})
        self.conf = dict(conf or {})
        self._own_folder = folder is None
        self.folder = Path(folder or tempfile.mkdtemp(prefix="harness-spark-connect-"))
        self.start_timeout_s = start_timeout_s
        self.port = free_port()
        self.ui_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    @property
    def warehouse(self) -> Path:
        return self.folder / "warehouse"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def start(self) -> SparkConnectServer:
        import pyspark

        spark_home = Path(pyspark.__file__).parent
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_"))}
        env.update(
            SPARK_HOME=str(spark_home),
            SPARK_LOG_DIR=str(self.folder / "logs"),
            SPARK_PID_DIR=str(self.folder / "pids"),
            SPARK_LOCAL_IP="127.0.0.1",
            PYSPARK_PYTHON=sys.executable,
        )
        env.update(self.extra_env)
        conf = {
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": str(self.port),
            "spark.ui.port": str(self.ui_port),
            "spark.port.maxRetries": "0",  # the UI on its port, or no server
            "spark.sql.warehouse.dir": str(self.warehouse),
            **self.conf,
        }
        self.folder.mkdir(parents=True, exist_ok=True)  # a folder given may not exist yet
        command = [str(spark_home / "sbin" / "start-connect-server.sh"), "--wait"]
        command += ["--master", self.master]
        for key, value in conf.items():
            command += ["--conf", f"{key}={value}"]
        with open(self.log, "wb") as out:
            self._process = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the Spark Connect server exited:\n{self._tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"the Spark Connect server did not start in time:\n{self._tail()}")

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # the script, spark-submit and the JVM
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> SparkConnectServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()
