"""The API in several processes on one port (``mixedfit serve --processes N``).

Each process builds the app from the environment (:func:`create_served_app`) and listens
on a socket of its own bound to the same address with ``SO_REUSEPORT``, so the kernel
spreads new connections evenly over the processes. (With one socket shared by all, as
uvicorn's supervisor does, the process that happens to be waiting in ``accept`` takes a
burst of connections: a client's eight keep-alive connections all went to one process,
and two processes were no faster than one.) The sockets are made here with protocol
``IPPROTO_TCP``, so asyncio sets ``TCP_NODELAY`` on their connections (on a socket of
protocol 0 it does not, and every small answer waited ~40 ms for the client's delayed
ACK). The supervisor holds the port (bound, never listening: it receives nothing), starts
a process again if one dies, and passes SIGTERM and SIGINT on.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import threading
import time
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from service.app import create_app
from service.ops.logs import configure_logging
from service.settings import get_settings

log = logging.getLogger("mixedfit")

APP = "service.asgi:create_served_app"
# how long a stopping process may take to finish its requests
STOP_GRACE_SECONDS = 30.0
# a process that ends this soon after its start ends the server (a broken setting, a
# database it cannot open) instead of being started again and again
EARLY_END_SECONDS = 10.0


def create_served_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_format)
    # the app writes its own access line; uvicorn's would be a second (it writes one
    # whenever its logger has a handler, and the logging just configured gave it the root's)
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False
    return create_app(settings)


def bound_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` that other such sockets may share."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _serve_one(host: str, port: int, options: dict[str, Any]) -> None:
    """One API process: its own socket on the shared port, then uvicorn until a signal."""
    sock = bound_socket(host, port)
    config = uvicorn.Config(APP, factory=True, host=host, port=port, **options)
    uvicorn.Server(config).run(sockets=[sock])


def serve_processes(host: str, port: int, processes: int, options: dict[str, Any]) -> None:
    """Run ``processes`` API processes on ``host:port`` until SIGINT or SIGTERM."""
    holder = bound_socket(host, port)  # the port is ours (or this fails at once)
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()

    started: dict[int, float] = {}

    def start() -> BaseProcess:
        process = context.Process(target=_serve_one, args=(host, port, options),
                                  name="mixedfit-api")
        process.start()
        started[id(process)] = time.monotonic()
        return process

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    children = [start() for _ in range(processes)]
    try:
        while not stop.wait(0.5):
            for index, child in enumerate(children):
                if child.is_alive():
                    continue
                if time.monotonic() - started[id(child)] < EARLY_END_SECONDS:
                    log.error("API process %s ended with %s right after it started; "
                              "stopping", child.pid, child.exitcode)
                    stop.set()
                    break
                log.warning("API process %s ended with %s; starting another", child.pid,
                            child.exitcode)
                children[index] = start()
    finally:
        for child in children:
            if child.is_alive() and child.pid is not None:
                child.terminate()  # SIGTERM: uvicorn finishes its requests and ends
        for child in children:
            child.join(STOP_GRACE_SECONDS)
            if child.is_alive():
                child.kill()
                child.join()
        holder.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
