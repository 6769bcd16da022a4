"""Slow clients for bench.abuse: sockets that send a request one byte at a time (slowloris), and
the loop that trickles them until the server closes them or a cap passes."""

from __future__ import annotations

import select
import socket
import time
from dataclasses import dataclass, field

from bench.abuse_server import HOST


@dataclass
class Slow:
    """A socket that sends its request one byte at a time."""

    label: str
    sock: socket.socket
    trickle: bytes  # empty: send nothing more (a stalled body)
    limit_s: float  # the server should end it within this
    started: float = field(default_factory=time.perf_counter)
    sent: int = 0
    ended: float | None = None
    outcome: str = "open"

    def finish(self, outcome: str) -> None:
        self.outcome, self.ended = outcome, time.perf_counter()
        self.sock.close()

    def poll(self) -> None:
        """Readable: the server answered (e.g. 408) or closed."""
        try:
            data = self.sock.recv(4096)
        except OSError:
            data = b""
        status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/1.") else "closed"
        self.finish(status)

    def send_next(self) -> None:
        if self.sent >= len(self.trickle):
            return
        try:
            self.sock.send(self.trickle[self.sent : self.sent + 1])
            self.sent += 1
        except OSError:
            self.finish("reset")


def open_slow(port: int, label: str, head: bytes, trickle: bytes, limit_s: float) -> Slow:
    sock = socket.create_connection((HOST, port), timeout=5)
    sock.sendall(head)
    sock.setblocking(False)
    return Slow(label, sock, trickle, limit_s)


def trickle_all(slows: list[Slow], cap_s: float, every_s: float) -> None:
    end = next_send = time.perf_counter()
    end += cap_s
    for _ in range(int(cap_s * 100) + 100):  # bounded: select waits up to 50 ms a turn
        live = [s for s in slows if s.ended is None]
        if not live or time.perf_counter() >= end:
            break
        ready, _, _ = select.select([s.sock for s in live], [], [], 0.05)
        for s in live:
            if s.sock in ready:
                s.poll()
        if time.perf_counter() >= next_send:
            for s in (s for s in live if s.ended is None):
                s.send_next()
            next_send += every_s
    for s in slows:
        if s.ended is None:
            s.sock.close()
