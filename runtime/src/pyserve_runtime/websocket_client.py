"""One WebSocket message through nginx and back, by hand (RFC 6455): `make container-test` is stdlib only."""

from __future__ import annotations

import base64
import os
import socket

from .compose_stack import check


def websocket_echo(port: int, text: str) -> str:
    """One text message through nginx's /ws/echo and back (RFC 6455, by hand: this test is stdlib only)."""
    payload = text.encode()
    check(len(payload) < 126, "a short message: one length byte")
    key = base64.b64encode(os.urandom(16)).decode()
    upgrade = (
        "GET /ws/echo HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(upgrade.encode())
        reader = connection.makefile("rb")
        status = reader.readline()
        check(b" 101 " in status, f"/ws/echo answered {status!r}")
        while reader.readline() not in (b"\r\n", b""):
            pass
        connection.sendall(client_frame(0x1, payload))
        while True:
            first, length = reader.read(2)
            check(length < 126, f"a long frame from the server: {first:#x}, length {length}")
            data = reader.read(length)
            if first == 0x89:  # a ping (hypercorn sends one at once): the pong carries its data back
                connection.sendall(client_frame(0xA, data))
            elif first != 0x8A:  # not a pong
                break
        check(first == 0x81, f"an unexpected frame: {first:#x}")
        connection.sendall(client_frame(0x8, (1000).to_bytes(2, "big")))  # close, normal closure
    return data.decode()


def client_frame(opcode: int, payload: bytes) -> bytes:
    """A whole, short frame as a client sends it: masked."""
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked
