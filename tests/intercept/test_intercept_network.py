"""The network closed in replay: loopback and Unix sockets connect, nothing else does.

The refused address is 0.0.0.0, which Linux would connect to this machine: should the guard
ever fail, the test fails without a packet leaving the machine.
"""

from __future__ import annotations

import socket
import threading

import pytest

from harness.intercept.network import closed_network


def listening() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server, server.getsockname()[1]


def test_only_loopback_connects_while_closed(tmp_path) -> None:
    server, port = listening()
    try:
        with closed_network():
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass
            with pytest.raises(ConnectionRefusedError, match="nothing leaves the machine"):
                socket.create_connection(("0.0.0.0", port), timeout=5)
            probe = socket.socket()
            with pytest.raises(ConnectionRefusedError, match="0.0.0.0"):
                probe.connect_ex(("0.0.0.0", port))
            probe.close()
            unix = socket.socket(socket.AF_UNIX)
            path = str(tmp_path / "s")
            listener = socket.socket(socket.AF_UNIX)
            listener.bind(path)
            listener.listen()
            unix.connect(path)  # not an internet address: open
            unix.close()
            listener.close()
        with socket.create_connection(("0.0.0.0", port), timeout=5):  # open again
            pass
    finally:
        server.close()


def test_the_guard_is_counted_across_threads() -> None:
    server, port = listening()
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with closed_network():
            entered.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        entered.wait(10)
        with closed_network():
            pass
        # The other thread's replay is still going: the process stays closed.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("0.0.0.0", port), timeout=5)
        release.set()
        holder.join()
        with socket.create_connection(("0.0.0.0", port), timeout=5):  # the last one left
            pass
    finally:
        release.set()
        holder.join()
        server.close()


def test_datagrams_leave_only_for_loopback_while_closed() -> None:
    # An unconnected UDP socket never connects: statsd telemetry sends with sendto.
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    port = receiver.getsockname()[1]
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with closed_network():
            sender.sendto(b"loopback", ("127.0.0.1", port))
            assert receiver.recv(64) == b"loopback"
            with pytest.raises(PermissionError, match="nothing leaves the machine"):
                sender.sendto(b"x", ("0.0.0.0", port))
            with pytest.raises(PermissionError, match="0.0.0.0"):
                sender.sendto(b"x", 0, ("0.0.0.0", port))
            with pytest.raises(PermissionError, match="0.0.0.0"):
                sender.sendmsg([b"x"], [], 0, ("0.0.0.0", port))
            sender.sendmsg([b"msg"], [], 0, ("127.0.0.1", port))
            assert receiver.recv(64) == b"msg"
        sender.sendto(b"open", ("0.0.0.0", port))  # open again
        assert receiver.recv(64) == b"open"
    finally:
        sender.close()
        receiver.close()
