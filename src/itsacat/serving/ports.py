"""A port check run before a service starts, so a taken port is one clear error line."""

from __future__ import annotations

import socket

from itsacat.errors import ItsacatError


def check_port_free(host: str, port: int, user: str) -> None:
    """Raise `ItsacatError` (`port_in_use`) when nothing can listen on host:port for `user`.

    Another process can still take the port between this check and the real bind; the server
    then reports that itself.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ItsacatError("port_in_use", f"cannot start {user} on {host}:{port}: "
                               f"{error.strerror}; stop what listens there or choose another "
                               "port") from None
