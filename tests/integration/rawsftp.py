"""A raw SFTP v3 client over a paramiko channel: what SFTPClient never sends (a tester)."""

from __future__ import annotations

import struct

import paramiko

from tests.integration.sftp_fixtures import RunningServer, paramiko_connect

INIT, VERSION, OPEN, CLOSE, READ, WRITE = 1, 2, 3, 4, 5, 6
LSTAT, FSTAT, SETSTAT, FSETSTAT = 7, 8, 9, 10
OPENDIR, READDIR, REMOVE, MKDIR, RMDIR, REALPATH, STAT, RENAME, READLINK, SYMLINK = range(11, 21)
STATUS, HANDLE, DATA, NAME, ATTRS = 101, 102, 103, 104, 105
EXTENDED, EXTENDED_REPLY = 200, 201
FXF_READ, FXF_WRITE, FXF_APPEND, FXF_CREAT, FXF_TRUNC, FXF_EXCL = 1, 2, 4, 8, 16, 32


def u32(n: int) -> bytes:
    return struct.pack(">I", n)


def u64(n: int) -> bytes:
    return struct.pack(">Q", n)


def s(b: bytes | str) -> bytes:
    if isinstance(b, str):
        b = b.encode()
    return u32(len(b)) + b


class Raw:
    def __init__(
        self,
        server: RunningServer,
        user: str = "alpha-erp",
        key: str = "alpha",
        version: int = 3,
        transport: paramiko.Transport | None = None,
    ) -> None:
        self.transport = transport or paramiko_connect(server, user, key)
        self.ch = self.transport.open_session(timeout=10)
        self.ch.settimeout(10)
        self.ch.invoke_subsystem("sftp")
        self.send_raw(bytes([INIT]) + u32(version))
        self.version = self.recv()
        self.next_id = 1

    def send_raw(self, payload: bytes) -> None:
        self.ch.sendall(u32(len(payload)) + payload)

    def _exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.ch.recv(n - len(out))
            if not chunk:
                raise EOFError("channel closed")
            out += chunk
        return out

    def recv(self) -> bytes:
        (n,) = struct.unpack(">I", self._exact(4))
        return self._exact(n)

    def send(self, kind: int, body: bytes) -> int:
        rid = self.next_id
        self.next_id += 1
        self.send_raw(bytes([kind]) + u32(rid) + body)
        return rid

    def request(self, kind: int, body: bytes) -> tuple[int, bytes]:
        self.send(kind, body)
        reply = self.recv()
        return reply[0], reply[5:]

    @staticmethod
    def status(body: bytes) -> tuple[int, str]:
        code = struct.unpack(">I", body[:4])[0]
        n = struct.unpack(">I", body[4:8])[0]
        return code, body[8 : 8 + n].decode(errors="replace")

    def open(self, path: bytes | str, flags: int) -> bytes:
        kind, body = self.request(OPEN, s(path) + u32(flags) + u32(0))
        assert kind == HANDLE, (kind, self.status(body))
        return body[4 : 4 + struct.unpack(">I", body[:4])[0]]

    def close(self) -> None:
        self.transport.close()
