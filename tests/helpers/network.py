"""Loopback servers that a client cannot get an answer from."""

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def silent_listener(max_held: int = 64) -> Iterator[tuple[int, Callable[[], int]]]:
    """A TCP listener on 127.0.0.1 that accepts connections and never answers: ``(port, accepted)``, where
    ``accepted()`` counts the connections it took. It holds at most ``max_held`` of them open (later ones are
    closed at once) and closes them all, and itself, on exit."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    held: list[socket.socket] = []
    count = [0]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:  # the accept timed out (or the socket was closed): look at `stop` again
                continue
            count[0] += 1
            if len(held) < max_held:
                held.append(conn)  # read nothing, answer nothing
            else:
                conn.close()

    thread = threading.Thread(target=serve, name="silent-listener", daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], lambda: count[0]
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        server.close()


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]
