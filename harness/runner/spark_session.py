"""Which Spark session harness uses, how it opens one, and keeping Spark off the terminal.

``harness run --spark`` (and ``harness data import --spark-table``, ``harness runs export
--spark-table``) uses, in this order:

1. the session it is handed (``evaluate(spark=session)``), else the active one (a
   notebook's ``spark``): used as it is and never stopped;
2. a remote session: ``--spark-remote sc://HOST:PORT`` (Spark Connect) or ``--spark
   databricks`` (Databricks Connect, with the ``~/.databrickscfg`` profile of ``--profile``,
   the same profiles ``harness sync`` uses); else ``SPARK_REMOTE`` in the environment (an
   ``sc://`` URL); else ``[spark] remote`` (and ``profile``) in harness.toml;
3. else a local session harness starts: ``[spark] master`` (default ``local[*]``).

A session harness opens, it stops at the end. Unless ``--verbose``, a JVM harness starts
writes its output (Spark's log4j lines, the Python workers' stderr) to a log file in the
temporary folder rather than the terminal, and pyspark's Python warnings and JSON error
logs are off. A Spark failure is one line ending with where to look: the Spark UI of a
remote or active session, or the log file of a local one (kept when a failure names it).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import signal
import socket
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from harness.errors import ConfigError, EnvironmentFault
from harness.runner.spark_retries import ServerWatch
from harness.secrets import scrub_secrets

__all__ = [
    "DATABRICKS",
    "NEEDS_PYSPARK",
    "SparkHandle",
    "SparkTarget",
    "check_target",
    "error_line",
    "open_session",
]

DATABRICKS = "databricks"
DEFAULT_CONNECT_PORT = 15002  # Spark Connect's default
DEFAULT_UI_PORT = 4040  # the Spark UI's default
DEFAULT_TASKS = 8  # tasks per wave when the session cannot say how many cores it has
CONNECT_TIMEOUT_S = 10.0
NEEDS_PYSPARK = "--spark needs pyspark: pip install 'harness[spark]' (and Java 17 or later)"
_NEEDS_CONNECT = (
    "Spark Connect needs pyspark's Connect client: pip install 'harness[spark]' "
    "(pyspark[connect]; {missing} is missing)"
)
_NEEDS_DATABRICKS_CONNECT = (
    "--spark databricks needs Databricks Connect: pip install 'databricks-connect==X.Y.*' "
    "with X.Y the cluster's Databricks Runtime version (it replaces pyspark)"
)


@dataclass(frozen=True)
class SparkTarget:
    """Where a session harness opens itself would run (unused when one is active)."""

    remote: str | None = None  # "sc://HOST:PORT[/;params]" or "databricks"
    profile: str | None = None  # a ~/.databrickscfg profile, with remote == "databricks"
    master: str | None = None  # for a local session: [spark] master
    verbose: bool = False  # Spark's own log lines on the terminal

    @classmethod
    def resolve(
        cls,
        settings: Mapping[str, Any],
        *,
        remote: str | None = None,
        profile: str | None = None,
        verbose: bool = False,
        environ: Mapping[str, str] | None = None,
    ) -> SparkTarget:
        """The flags, else ``SPARK_REMOTE``, else ``[spark]`` of harness.toml."""
        _not_empty(remote)
        table = settings.get("spark") or {}
        env = os.environ if environ is None else environ
        from_env = env.get("SPARK_REMOTE", "")
        chosen = remote or (from_env if from_env.startswith("sc://") else None)
        chosen = chosen or table.get("remote")
        if chosen is not None and chosen != DATABRICKS:
            connect_address(chosen)  # a bad URL fails here, before anything runs
        if profile and chosen != DATABRICKS:
            raise ConfigError(
                "--profile names the ~/.databrickscfg profile of --spark databricks; "
                'it needs --spark databricks (or [spark] remote = "databricks")'
            )
        if chosen == DATABRICKS:
            profile = profile or table.get("profile")
        return cls(chosen, profile, table.get("master"), verbose)

    @classmethod
    def from_flags(
        cls,
        settings: Mapping[str, Any],
        *,
        spark: str | None = None,
        remote: str | None = None,
        profile: str | None = None,
        verbose: bool = False,
    ) -> SparkTarget | None:
        """``--spark [databricks]``, ``--spark-remote URL``, ``--profile NAME``: the target,
        or None when none of them asks for Spark. ``spark`` is ``"on"`` (a bare
        ``--spark``), ``"databricks"`` or a Spark Connect URL."""
        _not_empty(remote)
        if spark and spark.startswith("sc://"):  # evaluate(spark="sc://...")
            if remote and remote != spark:
                raise ConfigError("spark= and spark_remote= name two Spark Connect servers")
            spark, remote = "on", spark
        if spark not in (None, "on", DATABRICKS):
            raise ConfigError(f"--spark takes no value or `databricks`, not {spark!r}")
        if spark == DATABRICKS and remote:
            raise ConfigError(
                "--spark databricks and --spark-remote name two clusters; give one of them"
            )
        if not (spark or remote):
            if profile:
                raise ConfigError("--profile names the Databricks profile of --spark databricks")
            return None
        if spark == DATABRICKS:
            remote = DATABRICKS
        return cls.resolve(settings, remote=remote, profile=profile, verbose=verbose)

    @property
    def where(self) -> str:
        """For messages: never a token a Connect URL may carry."""
        if self.remote == DATABRICKS:
            return "Databricks" + (f" (profile {self.profile})" if self.profile else "")
        if self.remote:
            host, port = connect_address(self.remote)
            return f"sc://{host}:{port}"
        return self.master or "local[*]"


def _not_empty(remote: str | None) -> None:
    """``--spark-remote "$URL"`` with URL unset asks for a cluster, not for no flag."""
    if remote is not None and not remote.strip():
        raise ConfigError("--spark-remote needs sc://HOST:PORT or databricks, got nothing")


def connect_address(url: str) -> tuple[str, int]:
    """``sc://HOST[:PORT][/;params]`` -> (host, port); a one-line error for anything else."""
    parts = urlsplit(url) if url.startswith("sc://") else None
    try:
        port = parts.port if parts is not None else None
    except ValueError:  # a port that is not a number
        parts = None
    if parts is None or not parts.hostname:
        shown = url.split(";", 1)[0]  # parameters may hold a token
        raise ConfigError(
            f"Spark remote {shown!r} is neither sc://HOST:PORT (Spark Connect) nor databricks"
        )
    return parts.hostname, port or DEFAULT_CONNECT_PORT


def check_target(target: SparkTarget, session: Any = None) -> None:
    """What can be checked before a run exists, without starting Spark or the network:
    pyspark imports, and a remote's client library and credentials are there."""
    try:
        import pyspark.sql  # noqa: F401 - only whether it imports
    except ImportError:
        raise ConfigError(NEEDS_PYSPARK) from None
    if not target.verbose:
        quiet_pyspark()  # before the Connect client's import warns
    if session is not None or active_session() is not None:
        return  # used as it is: the target does not apply
    if target.remote == DATABRICKS:
        _databricks_builder(target.profile)
    elif target.remote:
        _connect_client()
        _check_connect_url(target.remote)


@dataclass
class SparkHandle:
    """An open session, whether harness must stop it, and where to look when it fails."""

    session: Any
    owned: bool
    where: str  # for messages: "local[2]", "sc://host:15002", "Databricks cluster ..."
    ui_url: str | None = None
    log_path: str | None = None  # a local JVM's output, when harness redirected it
    default_tasks: int | None = None  # the session's cores, when it can say
    # a Spark Connect server's: whether it went away (the environment's fault) under a job
    watch: ServerWatch | None = None

    def why_lost(self, error: BaseException) -> str | None:
        """Why a job failed with ``error`` if its Spark Connect server is gone, else None."""
        return self.watch.why_lost(error) if self.watch is not None else None

    def failure(self, what: str, error: BaseException) -> str:
        """``what: <the error's line> (Spark UI: URL)``: one line, for a HarnessError."""
        return f"{what}: {error_line(error)}{self.hint()}"

    def hint(self) -> str:
        if self.ui_url:
            return f" (Spark UI: {self.ui_url})"
        if self.log_path:
            _keep_jvm_log()
            return f" (Spark's log: {self.log_path})"
        return ""

    def close(self) -> None:
        if self.owned:
            self.session.stop()


def open_session(
    target: SparkTarget, session: Any = None, note: Callable[[str], None] | None = None
) -> SparkHandle:
    """The session to use (see the module): handed in, active, remote, else local."""
    if session is None:
        session = active_session()
    if session is not None:
        return _describe(session, owned=False, where="the active Spark session")
    if not target.verbose:
        quiet_pyspark()
    say = note or (lambda message: None)
    if target.remote == DATABRICKS:
        say(f"connecting to {target.where} (a stopped cluster takes minutes to start)")
        return _open_databricks(target.profile)
    if target.remote:
        say(f"connecting to the Spark Connect server at {target.where}")
        return _open_connect(target.remote)
    say(f"starting Spark ({target.where})")
    return _open_local(target)


def active_session() -> Any:
    """The classic or Spark Connect session active in this process, if any."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    remote = sys.modules.get("pyspark.sql.connect.session")  # only if someone loaded it
    if active is None and remote is not None:
        active = remote.SparkSession.getActiveSession()
    return active


def quiet_pyspark() -> None:
    """pyspark's Python-side noise off: pandas-version warnings and JSON error logs
    (the error itself reaches the user as harness's one line)."""
    warnings.filterwarnings("ignore", "PySpark does not yet fully support", FutureWarning)
    try:
        from pyspark.logger import PySparkLogger  # pyspark >= 4
    except ImportError:
        return
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)


def _open_local(target: SparkTarget) -> SparkHandle:
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway
    from pyspark.sql import SparkSession

    # Python workers must run this interpreter (harness is installed here), not `python3`.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    master = target.where
    conf = (
        SparkConf()
        .setMaster(master)
        .setAppName("harness")
        .set("spark.ui.showConsoleProgress", "false")  # progress is harness's, on stderr
        # The UI would close with the run that could show it: a failure names the log.
        .set("spark.ui.enabled", "false")
        # A cancelled task's Python worker is killed at once, not after 2 s (Spark's
        # default): the engine in it goes on calling models until then, paying for answers
        # the cancelled wave cannot bring back.
        .set("spark.python.task.killTimeout", "0s")
    )
    log_path = None
    try:
        # One JVM per Python process: started once (launch_gateway's popen_kwargs is
        # pyspark's way to capture its output), reused by later sessions as it is.
        if target.verbose or SparkContext._gateway is not None:
            with _own_sigint():
                context = SparkContext(conf=conf)
        else:
            log_path = _jvm_log()
            with open(log_path, "ab") as log:
                gateway = launch_gateway(conf, popen_kwargs={"stdout": log, "stderr": log})
            with _own_sigint():
                context = SparkContext(conf=conf, gateway=gateway)
    except Exception as e:  # noqa: BLE001 - py4j/JVM start-up errors have no common type
        handle = SparkHandle(None, False, master, log_path=log_path)
        raise ConfigError(handle.failure(f"cannot start Spark ({master})", e)) from None
    spark = SparkSession(context)
    return SparkHandle(
        spark, True, master, log_path=log_path, default_tasks=context.defaultParallelism
    )


@contextlib.contextmanager
def _own_sigint() -> Iterator[None]:
    """Keep the SIGINT handler in place while a SparkContext starts.

    pyspark's SparkContext replaces it (cancel every job, raise KeyboardInterrupt), which
    took Ctrl-C away from a run's own handling (stop sending waves, cancel this run's jobs,
    store the run as interrupted and say how to resume): the run was stored as failed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # pyspark installs its handler only in the main thread
        return
    previous = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        if previous is not None:  # None: a handler not installed from Python
            signal.signal(signal.SIGINT, previous)


def _connect_client() -> Any:
    try:
        from pyspark.sql.connect.session import SparkSession as RemoteSession
    except ImportError as e:
        raise ConfigError(_NEEDS_CONNECT.format(missing=e.name or "a module")) from None
    return RemoteSession


def _check_connect_url(url: str) -> None:
    """pyspark's own reading of the URL, no network: a parameter it refuses (``;foo``, a
    path) is bad input, refused before a run exists, not once the server answers."""
    from pyspark.errors import PySparkException
    from pyspark.sql.connect.client.core import DefaultChannelBuilder

    try:
        DefaultChannelBuilder(url)
    except PySparkException as e:
        where = "sc://{}:{}".format(*connect_address(url))
        raise ConfigError(f"Spark remote {where}: {_without_token(error_line(e), url)}") from None


def _open_connect(url: str) -> SparkHandle:
    from pyspark.errors import PySparkException

    host, port = connect_address(url)
    where = f"sc://{host}:{port}"
    # The client retries a server that does not answer for ten minutes and more, saying
    # nothing: a closed port, or one that takes the connection and never speaks, fails now.
    # Either is the environment's fault (exit 74, as `harness sync` to a target it cannot
    # reach), not the input's: a run may have stored its cached rows by now.
    tls = _uses_tls(url, host)
    try:
        answered = _speaks_http2(host, port, tls=tls)
    except OSError as e:
        raise EnvironmentFault(
            f"cannot reach the Spark Connect server at {where}: {e.strerror or e}"
        ) from None
    if not answered:
        raise EnvironmentFault(
            f"the server at {where} takes connections but does not answer as a Spark Connect "
            f"server (gRPC) within {CONNECT_TIMEOUT_S:g} s: is it one, and is it ready?"
        )
    remote = _connect_client()
    watch = ServerWatch(lambda: _speaks_http2(host, port, tls=tls))
    try:
        spark = remote.builder.remote(url).create()
        watch.install(spark)
        spark.version  # noqa: B018 - the first call: the server answers, or says why not
    except PySparkException as e:
        raise ConfigError(
            f"cannot use the Spark Connect server at {where}: {_without_token(error_line(e), url)}"
        ) from None
    handle = _describe(spark, owned=True, where=where, host=host)
    handle.watch = watch
    return handle


# What an HTTP/2 client sends first (RFC 9113 3.4): the preface, then its SETTINGS frame
# (empty). A gRPC server answers with its own SETTINGS frame; Spark Connect is gRPC.
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _uses_tls(url: str, host: str) -> bool:
    """Whether pyspark's client will speak TLS (its ``ChannelBuilder.toChannel``): with
    ``use_ssl=true``, or with a token, except to ``localhost`` without ``use_ssl``."""
    params = dict(part.split("=", 1) for part in url.split(";")[1:] if "=" in part)
    use_ssl = params.get("use_ssl", "").lower() == "true"
    token = "token" in params or os.environ.get("SPARK_CONNECT_AUTHENTICATE_TOKEN") is not None
    return use_ssl or (token and host != "localhost")


def _speaks_http2(host: str, port: int, *, tls: bool) -> bool:
    """Whether the server answers an HTTP/2 preface with a SETTINGS frame within
    ``CONNECT_TIMEOUT_S`` (an HTTP/1.1 server's 505, an SSH banner, the Spark UI's port are
    no answer: pyspark would wait on them as on silence); OSError when it cannot be
    reached. Nothing but the preface is sent (never the token)."""
    with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S) as raw:
        connection: socket.socket = raw
        if tls:
            import ssl

            context = ssl.create_default_context()
            context.check_hostname = False  # a liveness check: the client verifies later
            context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["h2"])
            connection = context.wrap_socket(raw, server_hostname=host)
        try:
            if tls and connection.selected_alpn_protocol() != "h2":  # type: ignore[attr-defined]
                return False
            connection.sendall(_HTTP2_PREFACE)
            header = b""
            while len(header) < 9:  # the first frame's header: type 4 on stream 0
                more = connection.recv(9 - len(header))
                if not more:
                    return False  # the server hung up
                header += more
            return header[3] == 0x04 and int.from_bytes(header[5:9], "big") & 0x7FFFFFFF == 0
        except TimeoutError:
            return False
        finally:
            connection.close()  # the TLS socket holds the connection, not ``raw``


def _without_token(text: str, url: str) -> str:
    """``text`` with the value of the URL's ``;token=`` (and the environment's keys) as
    ``***``: pyspark quotes a parameter it cannot parse whole, a token with base64's ``=``
    padding among them."""
    for token in re.findall(r";token=([^;]+)", url):
        text = text.replace(token.strip(), "***")
    return scrub_secrets(text)


def _databricks_builder(profile: str | None) -> tuple[Any, Any]:
    """Databricks Connect's builder for ``profile``, and the credentials it will use.

    The profile is read as ``harness sync`` reads it (no network); a workspace without a
    cluster (``cluster_id``) or serverless compute (``serverless_compute_id = auto``) for
    Databricks Connect to run on is refused here, in one line.
    """
    try:
        from databricks.connect import DatabricksSession
    except ImportError:
        raise ConfigError(_NEEDS_DATABRICKS_CONNECT) from None
    from harness.tracking.databricks_auth import resolve_databricks_credentials

    creds = resolve_databricks_credentials(profile)
    if not (creds.cluster_id or creds.serverless_compute_id):
        raise ConfigError(
            f"--spark databricks needs a cluster to run on: add cluster_id = ... (or "
            f"serverless_compute_id = auto) to {creds.source}, or set DATABRICKS_CLUSTER_ID"
        )
    builder = DatabricksSession.builder
    if creds.profile:
        builder = builder.profile(creds.profile)
    return builder, creds


def _open_databricks(profile: str | None) -> SparkHandle:
    from harness.secrets import redact

    builder, creds = _databricks_builder(profile)
    compute = (
        f"cluster {creds.cluster_id}" if creds.cluster_id else "serverless compute"
    ) + f" of {creds.host} ({creds.source})"
    try:
        spark = builder.getOrCreate()
    except Exception as e:  # noqa: BLE001 - Databricks Connect and SDK errors share no base
        # A workspace the network cannot reach is the environment's fault (exit 74), as an
        # unreachable Spark Connect server; anything else (a refused token, a cluster that
        # is not there) is the user's setup (exit 2).
        reason = _network_failure(e)
        if reason is not None:
            raise EnvironmentFault(
                redact(f"cannot reach Databricks {compute}: {reason}", creds.secrets)
            ) from None
        raise ConfigError(
            redact(f"cannot connect to Databricks {compute}: {error_line(e)}", creds.secrets)
        ) from None
    ui = f"{creds.host}/#setting/clusters/{creds.cluster_id}/sparkUi" if creds.cluster_id else None
    return SparkHandle(spark, True, f"Databricks {compute}", ui_url=ui)


def _network_failure(error: BaseException) -> str | None:
    """Why the network failed ``error``, from the deepest ``OSError`` in its chain (the SDK
    raises ``TimeoutError`` over requests' ``ConnectionError`` over ``Connection refused``)
    or a gRPC status of ``UNAVAILABLE`` or ``DEADLINE_EXCEEDED``; None for any other error."""
    reason = None
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError):
            reason = cause.strerror or error_line(cause)
        else:
            status = getattr(cause, "getGrpcStatusCode", None) or getattr(cause, "code", None)
            try:
                name = getattr(status() if callable(status) else None, "name", None)
            except Exception:  # noqa: BLE001 - a code() that is not gRPC's
                name = None
            if name in ("UNAVAILABLE", "DEADLINE_EXCEEDED"):
                details = getattr(cause, "details", None)  # grpc.RpcError's own words
                reason = reason or (details() if callable(details) else None) or error_line(cause)
        cause = cause.__cause__ or cause.__context__
    return reason


def _describe(spark: Any, *, owned: bool, where: str, host: str | None = None) -> SparkHandle:
    """A handle for a session harness did not start here: its UI and cores, if it says."""
    handle = SparkHandle(spark, owned, where)
    context = _spark_context(spark)
    if context is not None:
        handle.ui_url = context.uiWebUrl
        handle.default_tasks = context.defaultParallelism
        return handle
    from pyspark.errors import PySparkException

    try:  # Spark Connect: no SparkContext, but the server's settings
        conf = spark.conf
        parallelism = conf.get("spark.default.parallelism", None)
        handle.default_tasks = int(parallelism) if parallelism else _cores(conf.get("spark.master"))
        if host is not None and conf.get("spark.ui.enabled", "true") != "false":
            handle.ui_url = f"http://{host}:{conf.get('spark.ui.port', None) or DEFAULT_UI_PORT}"
    except PySparkException:
        pass  # a server that hides its settings: the defaults apply, the failure has no URL
    return handle


def _spark_context(spark: Any) -> Any:
    """A classic session's SparkContext; None over Spark Connect (which has none)."""
    if type(spark).__module__.startswith("pyspark.sql.connect"):
        return None
    return getattr(spark, "sparkContext", None)


def _cores(master: str | None) -> int | None:
    """Cores of a local master: ``local[4]`` -> 4, ``local-cluster[2,1,1024]`` -> 2."""
    if master == "local":
        return 1
    found = re.fullmatch(r"local\[(\d+)(?:,\d+)?\]", master or "")
    if found:
        return int(found.group(1))
    found = re.fullmatch(r"local-cluster\[(\d+),\s*(\d+),\s*\d+\]", master or "")
    if found:
        return int(found.group(1)) * int(found.group(2))
    return None


def error_line(error: BaseException) -> str:
    """The one line of a JVM, Spark Connect or Python worker error that says what went wrong.

    A Python worker's traceback ends with its exception (``ValueError: ...``), inside a
    JVM ``SparkException: Job aborted ...``; Spark's own errors start with their class
    (``[TABLE_OR_VIEW_NOT_FOUND] ...``); Spark Connect appends the JVM's stack trace.
    """
    # The message, without the JVM's stack trace and causes (Spark Connect appends them
    # after "JVM stacktrace:", Py4J after the first frame); a Python traceback stays.
    text = re.split(r"JVM stacktrace:|\n\s*at [\w$.]+\(|\nCaused by: ", str(error))[0]
    lines = [line.strip().removeprefix(": ") for line in text.splitlines() if line.strip()]
    kept = [line for line in lines if not line.startswith(("at ", "File ", "...", "Traceback"))]
    raised = [line for line in kept if re.match(r"[\w.]+(Error|Exception|Exit): ", line)]
    classified = [line for line in kept if re.match(r"\[[A-Z_.]+\] ", line)]
    line = (raised[-1:] or classified[:1] or kept[:1] or [type(error).__name__])[0]
    line = re.sub(r"\s*SQLSTATE: \w+;?$", "", line)
    # "Job aborted due to stage failure: ... org.apache.spark.SparkException: WHAT. Advice":
    # the innermost exception's message says what happened; its first sentence, if long.
    line = re.split(r"(?:[a-z_]+\.)+[A-Z]\w*(?:Exception|Error): ", line)[-1]
    if len(line) > 120 and ". " in line:
        line = line.split(". ", 1)[0]
    return line[:300]


_jvm_log_state: dict[str, Any] = {"path": None, "keep": False}


def _jvm_log() -> str:
    """The file a JVM harness starts writes to; removed at exit unless a failure named it."""
    if _jvm_log_state["path"] is None:
        fd, created = tempfile.mkstemp(prefix="harness-spark-", suffix=".log")
        os.close(fd)
        _jvm_log_state["path"] = created
        atexit.register(_remove_jvm_log)
    return str(_jvm_log_state["path"])


def _keep_jvm_log() -> None:
    _jvm_log_state["keep"] = True


def _remove_jvm_log() -> None:
    path = _jvm_log_state["path"]
    if path and not _jvm_log_state["keep"]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
