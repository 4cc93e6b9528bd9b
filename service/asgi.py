"""The API in several processes on one port (``mixedfit serve --processes N``).

uvicorn's supervisor starts N processes that each build the app from the environment
(:func:`create_served_app`) and accept on one listening socket. The socket is made here,
not by uvicorn: uvicorn's own has protocol 0, so asyncio does not set ``TCP_NODELAY`` on
its connections, and every small answer then waits ~40 ms for the client's delayed ACK
(Nagle), which made two processes slower than one.
"""

from __future__ import annotations

import logging
import socket

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from service.app import create_app
from service.ops.logs import configure_logging
from service.settings import get_settings


def create_served_app() -> FastAPI:
    settings = get_settings()
    configure_logging(settings.log_format)
    # the app writes its own access line; uvicorn's would be a second (it writes one
    # whenever its logger has a handler, and the logging just configured gave it the root's)
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False
    return create_app(settings)


def serve_processes(config: uvicorn.Config) -> None:
    """Run ``config.workers`` processes of ``config``'s app on a TCP socket of its host and
    port, until SIGINT or SIGTERM."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((config.host, config.port))
    listener.set_inheritable(True)
    try:
        Multiprocess(config, sockets=[listener]).run()
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
