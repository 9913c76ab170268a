"""One SFTP channel: file requests carried out inside the user's `/in` and `/out`.

An upload is written to a hidden `.upload-*` file in `in/` and renamed to the
client's name only when the client closes it; its receipt is written first.
Everything runs on one event loop, so a check followed by a rename with no
`await` in between cannot race with another session of this process; against another
process serving the same spool (a second daemon) the name is taken by the receipt,
written never over another, and by a rename that never replaces (`_take_name`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import stat
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncssh

from gateway import upload_temps
from gateway.files import fsync_dir, move_no_replace, sha256_file
from gateway.sftp import ending, fs
from gateway.sftp.connection import Connection
from gateway.sftp.context import ServerContext, Uploader, file_identity
from gateway.sftp.receipts import (
    UploadReceipt,
    read_receipt,
    receipt_path,
    remove_receipt,
    write_receipt,
)
from gateway.sftp.requests import logged, logged_failures

READ_BYTES_MAX = 256 * 1024
UNREAD_ANSWERS_BYTES_MAX = 8 * 1024 * 1024  # answers held for a client that does not read
ANSWERS_WAIT_SECONDS = 0.01
FILE_OFFSET_MAX = 2**63 - 1  # an SFTP offset is 64 bits unsigned, a file's signed
HANDLES_PER_SESSION_MAX = 64
PATH_SHOWN_BYTES_MAX = 256  # of a path that names nothing, in the log
UPLOAD_FILE_MODE = 0o640
# A session answers a stat of a file it has just uploaded with the file's attributes for
# this long, even once the gateway has taken it from in/: clients confirm an upload with
# a stat after the close (paramiko's put), which would otherwise find nothing there.
CLOSED_REMEMBERED_SECONDS = 60.0
CLOSED_REMEMBERED_MAX = 16


def _file_names(folder: str) -> list[str]:
    """The names of the regular files a client may see in `folder`, sorted."""
    with os.scandir(folder) as entries:
        return sorted(
            entry.name
            for entry in entries
            if not fs.is_internal_name(entry.name) and entry.is_file(follow_symlinks=False)
        )


def _attrs(st: os.stat_result) -> asyncssh.SFTPAttrs:
    """Attributes shown to clients: no uid or gid, which would name server accounts (the
    `ls -l` listing shows the client id as owner and group instead: `format_user`)."""
    return asyncssh.SFTPAttrs(
        size=st.st_size,
        permissions=st.st_mode,
        atime=int(st.st_atime),
        mtime=int(st.st_mtime),
        nlink=1,  # only for the long name's link column; SFTP version 3 does not send it
    )



class ReadHandle:
    def __init__(self, fd: int, vpath: fs.VirtualPath) -> None:
        self.fd = fd
        self.vpath = vpath

    def seek(self, offset: int, whence: int) -> int:
        """For asyncssh's `ranges@asyncssh.com` (SEEK_DATA, SEEK_HOLE), which its get() asks."""
        return os.lseek(self.fd, offset, whence)


class Upload:
    """An open-for-write: a hidden file in in/, hashed while written when writes are in order."""

    def __init__(
        self, target: fs.VirtualPath, local: str, temp: str, fd: int, size_max: int
    ) -> None:
        self.target = target
        self.local = local  # the name it takes when closed, held in `ServerContext.writing`
        self.temp = temp
        self.fd: int | None = fd
        self.size_max = size_max
        self.sha = hashlib.sha256()
        self.hashed_bytes = 0
        self.in_order = True
        self.failed = False
        # Bytes counted against the client's waiting-bytes limit (the furthest end written).
        self.reserved = 0
        # Why the upload was refused and discarded; repeated to every later request on it.
        self.refusal: str | None = None

    def write(self, offset: int, data: bytes) -> int:
        assert self.fd is not None
        view = memoryview(data)
        done = 0
        try:
            while done < len(data):
                done += os.pwrite(self.fd, view[done:], offset + done)
        except OSError:
            self.failed = True
            raise
        if self.in_order and offset == self.hashed_bytes:
            self.sha.update(data)
            self.hashed_bytes += len(data)
        elif data:
            self.in_order = False  # hash the whole file on close instead
        return len(data)

    def seek(self, offset: int, whence: int) -> int:
        """For asyncssh's `ranges@asyncssh.com` on a handle open for writing."""
        if self.fd is None:
            raise asyncssh.SFTPInvalidHandle("upload discarded")
        return os.lseek(self.fd, offset, whence)

    def discard(self) -> None:
        """Remove the hidden file, then release its lock (closing it): once the lock is
        free, the spool's housekeeping would take a file still there as abandoned."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp)
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


ending.tell_sessions()


@logged_failures
class SftpSession(asyncssh.SFTPServer, ending.Ending):
    """File requests of one SFTP channel, confined to the user's `/in` and `/out`."""

    def __init__(self, chan: asyncssh.SSHServerChannel[bytes], ctx: ServerContext) -> None:
        super().__init__(chan)
        owner = chan.get_connection().get_owner()
        assert isinstance(owner, Connection) and owner.authenticated
        assert owner.client is not None and owner.user is not None
        self.ctx = ctx
        self.owner = owner
        self.client_id = owner.client.id
        self.user = owner.user.name
        self.mode = owner.user.mode
        self.root = ctx.client_dir(self.client_id)
        self.waiting_limit = ctx.settings.waiting_bytes_max(owner.client)
        self.uploads: set[Upload] = set()
        self.open_handles = 0
        # Uploads this session closed lately: virtual path -> (when, attributes).
        self.closed: OrderedDict[str, tuple[float, asyncssh.SFTPAttrs]] = OrderedDict()
        self.log = ctx.log.bind(user=self.user, client=self.client_id, source_ip=owner.source_ip)

    # Helpers

    def _resolve(self, path: bytes) -> fs.VirtualPath:
        self.owner.touch()
        try:
            vpath = fs.resolve(path)
        except fs.PathRefused as exc:
            raise asyncssh.SFTPNoSuchFile(str(exc)) from exc
        if vpath.area == fs.TRIAL_AREA and self.mode != "manage":  # /test is for manage users
            raise asyncssh.SFTPNoSuchFile(f"no such file: {vpath.text()}")
        return vpath

    def _local(self, vpath: fs.VirtualPath) -> str:
        assert vpath.area is not None
        try:
            return fs.confine(self.root / vpath.area, vpath)
        except fs.PathRefused as exc:
            raise asyncssh.SFTPNoSuchFile(str(exc)) from exc

    def _deny(self, op: str, vpath: fs.VirtualPath | str, reason: str) -> asyncssh.SFTPError:
        path = vpath if isinstance(vpath, str) else vpath.text()
        self._denied(op, path, reason)
        return asyncssh.SFTPPermissionDenied(reason)

    def _denied(self, op: str, path: str, reason: str) -> None:
        """`sftp.denied`, once a minute per user, operation and reason (with how many it
        held back): a session pipelining refused requests would otherwise fill the spool's
        disk with log lines."""
        self.ctx.log_limited(
            f"denied {self.user} {op} {reason}", "info", "sftp.denied", user=self.user,
            client=self.client_id, source_ip=self.owner.source_ip, op=op, path=path,
            reason=reason,
        )  # fmt: skip

    def _regular(self, local: str) -> os.stat_result:
        st = os.lstat(local)
        if not stat.S_ISREG(st.st_mode):
            raise asyncssh.SFTPNoSuchFile("no such file")
        return st

    def _folder_attrs(self, area: str | None) -> asyncssh.SFTPAttrs:
        """`/` (area None) or an area, shown writable only where this user may upload, with
        a link count and a size like every entry of a long listing."""
        st = os.stat(self.root if area is None else self.root / area)
        writable = fs.may_write_new(self.mode, fs.VirtualPath(area, ("x",))) is None
        return asyncssh.SFTPAttrs(
            size=st.st_size, permissions=stat.S_IFDIR | (0o750 if writable else 0o550),
            atime=int(st.st_atime), mtime=int(st.st_mtime), nlink=1,
        )  # fmt: skip

    def _root_attrs(self) -> asyncssh.SFTPAttrs:
        return self._folder_attrs(None)

    def _receipt_for(self, name: str, area: str | None = "in") -> Path:
        """The receipt of `name` in `area`: a trial's (`/test`) in a folder of its own."""
        key = f"{fs.TRIAL_AREA}/{name}" if area == fs.TRIAL_AREA else name
        return receipt_path(self.ctx.settings.spool_dir, self.client_id, key)

    def _refuse_taken(self, vpath: fs.VirtualPath, local: str) -> None:
        """Files in /in are never overwritten, nor is a name the gateway is still claiming.

        The pipeline moves a file and its receipt one after the other; while a
        receipt without its file remains, the name stays taken so that a new
        upload's receipt cannot be mistaken for the old one.
        """
        if os.path.lexists(local):
            self._denied("write", vpath.text(), "exists")
            raise asyncssh.SFTPFileAlreadyExists("Files in /in are never overwritten")
        if self._receipt_for(vpath.name, vpath.area).exists():
            self._denied("write", vpath.text(), "being claimed")
            raise asyncssh.SFTPFileAlreadyExists(
                "A file of this name is still being taken in; try again shortly"
            )

    def _take_name(
        self, vpath: fs.VirtualPath, local: str, receipt: UploadReceipt | None
    ) -> None:
        """Take the name a file is about to be moved to, for every process: its receipt
        is written first and never over another (`write_receipt`), so of two daemons on
        one spool publishing one name at once, one gets it and the other refuses — the
        checks before (`_refuse_taken`) cannot see the other process's rename coming."""
        if receipt is None:
            return
        written = write_receipt(receipt)
        if written and not os.path.lexists(local):
            return
        if written:  # a file without a receipt came meanwhile: the name is not ours
            remove_receipt(receipt.receipt_path)
        raise self._taken_meanwhile(vpath)

    def _move_in(
        self, vpath: fs.VirtualPath, source: str, local: str, receipt: UploadReceipt | None
    ) -> None:
        """Move the file to the name `_take_name` took, never over one there: a temporary
        name takes no receipt, and another daemon may have moved a file there meanwhile."""
        try:
            move_no_replace(source, local)
        except OSError as exc:
            if receipt is not None:
                remove_receipt(receipt.receipt_path)
            if isinstance(exc, FileExistsError):
                raise self._taken_meanwhile(vpath) from exc
            raise

    def _taken_meanwhile(self, vpath: fs.VirtualPath) -> asyncssh.SFTPError:
        self._denied("publish", vpath.text(), "taken meanwhile")
        return asyncssh.SFTPFileAlreadyExists(
            "A file of this name was put into the folder meanwhile; files in /in are never"
            " overwritten"
        )

    def _refuse_uploading(self, vpath: fs.VirtualPath, local: str) -> None:
        """A name another open upload (of any session) will take is refused until it is done:
        only one of them could be kept (SPEC §9: every upload keeps its own file)."""
        if local in self.ctx.writing:
            self._denied("write", vpath.text(), "being uploaded")
            raise asyncssh.SFTPFileAlreadyExists(
                "A file of this name is being uploaded in another session; try again when it"
                " is done, or under another name"
            )

    def _new_receipt(
        self, name: str, size: int, uploader: Uploader, area: str | None = "in"
    ) -> UploadReceipt:
        return UploadReceipt(
            client_id=self.client_id,
            sftp_user=uploader.user,
            source_ip=uploader.source_ip,
            key_fingerprint=uploader.key_fingerprint,
            file_name=name,
            uploaded_as=uploader.uploaded_as,
            size_bytes=size,
            sha256=uploader.sha256,
            received_at=self.ctx.clock.now(),
            path=self.root / (area or "in") / name,
            receipt_path=self._receipt_for(name, area),
        )

    # Paths and attributes

    def format_user(self, uid: int | None) -> str:
        """Owner shown by `ls -l`: the client, not a server account (attributes carry no uid)."""
        return self.client_id

    def format_group(self, gid: int | None) -> str:
        return self.client_id

    def map_path(self, path: bytes) -> bytes:
        # Every inherited method that would touch the disk is overridden; this is the backstop.
        raise asyncssh.SFTPPermissionDenied("not allowed")

    def realpath(self, path: bytes) -> bytes:
        self.owner.touch()
        try:
            return fs.normalize(path).encode("utf-8")
        except fs.PathRefused as exc:
            raise asyncssh.SFTPNoSuchFile(str(exc)) from exc

    def stat(self, path: bytes) -> asyncssh.SFTPAttrs:
        vpath = self._resolve(path)
        if vpath.is_root or vpath.is_area:
            return self._folder_attrs(vpath.area)
        try:
            st = os.lstat(self._local(vpath))  # confine() refused any link on the way
        except FileNotFoundError:
            attrs = self._closed_lately(vpath)
            if attrs is None:
                raise
            return attrs
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            raise asyncssh.SFTPNoSuchFile("no such file")
        return _attrs(st)

    def _remember_closed(self, vpath: fs.VirtualPath, st: os.stat_result) -> None:
        self.closed[vpath.text()] = (asyncio.get_running_loop().time(), _attrs(st))
        self.closed.move_to_end(vpath.text())
        while len(self.closed) > CLOSED_REMEMBERED_MAX:
            self.closed.popitem(last=False)

    def _closed_lately(self, vpath: fs.VirtualPath) -> asyncssh.SFTPAttrs | None:
        """The attributes of a file this session uploaded to `vpath` less than
        CLOSED_REMEMBERED_SECONDS ago (the gateway may have taken it since)."""
        found = self.closed.get(vpath.text())
        if found is None:
            return None
        when, attrs = found
        if asyncio.get_running_loop().time() - when > CLOSED_REMEMBERED_SECONDS:
            del self.closed[vpath.text()]
            return None
        return attrs

    def lstat(self, path: bytes) -> asyncssh.SFTPAttrs:
        return self.stat(path)

    def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
        """The listing behind a directory handle (OPENDIR), counted as an open handle of
        the session and the user until asyncssh lets go of it (the handle closed, the
        session over): a client holding listings open cannot use up the daemon's
        memory, each keeping only the folder's names."""
        vpath = self._resolve(path)
        self._take_handle(vpath)
        self.open_handles += 1
        listing = logged(self, "scandir", self._listing(vpath))
        weakref.finalize(listing, self._listing_closed)
        return listing

    def _listing_closed(self) -> None:
        self.open_handles -= 1
        self.ctx.handles.give_back(self.user)

    async def _listing(self, vpath: fs.VirtualPath) -> AsyncIterator[asyncssh.SFTPName]:
        if vpath.is_root:
            root = self._root_attrs()
            yield asyncssh.SFTPName(b".", attrs=root)
            yield asyncssh.SFTPName(b"..", attrs=root)
            for area in fs.AREAS:
                if area == fs.TRIAL_AREA and self.mode != "manage":
                    continue
                yield asyncssh.SFTPName(area.encode(), attrs=self._folder_attrs(area))
            return
        local = self._local(vpath)
        if not vpath.is_area:
            raise asyncssh.SFTPNoSuchFile("not a folder")
        here = self._folder_attrs(vpath.area)
        yield asyncssh.SFTPName(b".", attrs=here)
        yield asyncssh.SFTPName(b"..", attrs=self._root_attrs())
        # Read off the loop that serves every session: a big folder takes a while to read
        # and sort, and a client listing it again and again would hold every other client
        # up meanwhile (as counting its files did: `quota.py`).
        names = await asyncio.to_thread(_file_names, local)
        for name in names:  # each looked at as it is listed
            await self._room_for_answers()
            try:
                st = os.stat(os.path.join(local, name), follow_symlinks=False)
            except FileNotFoundError:  # claimed meanwhile: the listing goes on without it
                continue
            if stat.S_ISREG(st.st_mode):
                yield asyncssh.SFTPName(os.fsencode(name), attrs=_attrs(st))

    def readlink(self, path: bytes) -> bytes:
        self._resolve(path)
        raise asyncssh.SFTPNoSuchFile("no symbolic links here")

    # Opening, reading and writing

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        if pflags & asyncssh.FXF_WRITE:
            self._refuse_outside_areas(path)
        vpath = self._resolve(path)
        self._take_handle(vpath)
        try:
            handle = self._open(vpath, pflags)
        except BaseException:
            self.ctx.handles.give_back(self.user)
            raise
        self.open_handles += 1
        return handle

    def _refuse_outside_areas(self, path: bytes) -> None:
        """A new file outside every folder (`put pay.xml /`) is refused by the rule that
        says where uploads go, not as a file that does not exist."""
        with contextlib.suppress(fs.PathRefused):  # (a name refused as such: `_resolve`)
            where = fs.normalize(path)
            if where.strip("/").split("/")[0] not in fs.AREAS:
                reason = fs.may_write_new(self.mode, fs.VirtualPath(None))
                assert reason is not None, "nothing may be made outside the folders"
                raise self._deny("write", where, reason)

    def _take_handle(self, vpath: fs.VirtualPath) -> None:
        """Count one more open file against the session's, the user's and the server's
        limits, or refuse the open (logged once a minute per user)."""
        why = None
        if self.open_handles >= HANDLES_PER_SESSION_MAX:
            why = f"at most {HANDLES_PER_SESSION_MAX} open files per session"
        else:
            why = self.ctx.handles.take(self.user)
        if why is None:
            return
        self.ctx.log_limited(
            f"handles {self.user}", "warning", "sftp.open.refused", user=self.user,
            client=self.client_id, source_ip=self.owner.source_ip, path=vpath.text(),
            reason=why, open_files_user=self.ctx.handles.count(self.user),
            open_files_total=self.ctx.handles.count(),
        )  # fmt: skip
        raise asyncssh.SFTPFailure(f"Too many open files: {why}; close some and try again")

    def _open(self, vpath: fs.VirtualPath, pflags: int) -> object:
        if not pflags & asyncssh.FXF_WRITE:
            if vpath.area is None or not vpath.parts:
                raise asyncssh.SFTPFileIsADirectory("is a folder")
            local = self._local(vpath)
            fd = os.open(local, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise asyncssh.SFTPNoSuchFile("not a file")
            return ReadHandle(fd, vpath)
        reason = fs.may_write_new(self.mode, vpath)
        if reason:
            raise self._deny("write", vpath, reason)
        local = self._local(vpath)
        self._refuse_taken(vpath, local)
        if not pflags & asyncssh.FXF_CREAT:
            raise asyncssh.SFTPNoSuchFile("no such file")
        self._refuse_uploading(vpath, local)
        # The client's folders counted afresh as an upload starts (as often as their cost
        # allows: `quota.count_share_max`); writes then only add their growth. Refused past
        # the bound on files (`quota.files_waiting_max`).
        too_many = self.ctx.waiting.may_start(self.client_id)
        if too_many is not None:
            raise self._deny("write", vpath, too_many)
        # Locked while written: the spool's housekeeping removes a hidden upload only once
        # no session holds its lock (gateway.upload_temps).
        try:
            temp, fd = upload_temps.create(os.path.dirname(local), UPLOAD_FILE_MODE)
        except BaseException as exc:
            self.ctx.waiting.release(self.client_id, 0, kept=False)
            if isinstance(exc, OSError):  # a spool out of space or inodes: the operator's
                self._cannot_store(vpath, exc)
            raise
        upload = Upload(vpath, local, temp, fd, self.ctx.settings.max_file_bytes)
        self.ctx.temps.add(temp)
        self.ctx.writing.add(local)
        self.uploads.add(upload)
        return upload

    def _cannot_store(self, vpath: fs.VirtualPath, exc: OSError) -> None:
        """`sftp.upload.refused` for an upload the spool cannot even create, once a minute
        per user and cause; the client's open fails with the cause."""
        self.ctx.log_limited(
            f"cannot store {self.user} {exc.errno}", "warning", "sftp.upload.refused",
            user=self.user, client=self.client_id, file=vpath.name,
            reason=f"cannot create: {exc.strerror or exc}",
        )  # fmt: skip

    def open56(self, path: bytes, desired_access: int, flags: int,
               attrs: asyncssh.SFTPAttrs) -> object:
        raise asyncssh.SFTPOpUnsupported("SFTP version 3 only")

    async def read(self, file_obj: object, offset: int, size: int) -> bytes:
        self.owner.touch()
        fd = file_obj.fd if isinstance(file_obj, ReadHandle | Upload) else None
        if fd is None:
            raise asyncssh.SFTPInvalidHandle("invalid handle")
        size = min(size, READ_BYTES_MAX, max(0, FILE_OFFSET_MAX - offset))
        if not size:  # past any file (`pread` reads up to 2**63 - 1): its end
            return b""
        await self._room_for_answers()
        return os.pread(fd, size, offset)

    async def _room_for_answers(self) -> None:
        """Wait while the answers the client has not taken exceed `UNREAD_ANSWERS_BYTES_MAX`.
        asyncssh writes an answer whether or not the client takes it, and keeps what it
        cannot send in this process — in the channel while the client's window is full,
        in the connection's transport when the window is big and the client's TCP does not
        read: a client pipelining reads (or listings) it never took had answers held
        without bound (testers). Waiting here holds the session's next requests, so the
        client cannot send more than its window. (All of the connection's channels count.)"""
        channel = self.channel
        transport = getattr(channel.get_connection(), "_transport", None)  # asyncssh's
        while channel.get_write_buffer_size() + (
            transport.get_write_buffer_size() if transport is not None else 0
        ) > UNREAD_ANSWERS_BYTES_MAX:
            if channel.is_closing() or self.ending:
                raise asyncssh.SFTPConnectionLost("the client is gone")
            await asyncio.sleep(ANSWERS_WAIT_SECONDS)

    def write(self, file_obj: object, offset: int, data: bytes) -> int:
        self.owner.touch()
        if not isinstance(file_obj, Upload):
            raise asyncssh.SFTPPermissionDenied("file opened read-only")
        if file_obj.refusal is not None:
            raise asyncssh.SFTPFailure(file_obj.refusal)
        end = offset + len(data)
        if end > file_obj.size_max:
            self.log.warning(
                "sftp.upload.too_big", file=file_obj.target.name, max_file_bytes=file_obj.size_max
            )
            raise self._refuse(
                file_obj, "too big",
                f"File larger than the limit of {file_obj.size_max} bytes "
                "(gateway.max_file_bytes); upload discarded",
            )
        if end > file_obj.reserved:
            self._reserve(file_obj, end)
        try:
            return file_obj.write(offset, data)
        except OSError as exc:
            # A full (or failing) disk: the client's upload fails and is discarded at once,
            # so that its part does not hold space others need; the client sends it again.
            raise self._refuse(
                file_obj, f"write failed: {exc}",
                f"Write failed on the server ({exc.strerror or exc}); upload discarded, "
                "send it again later",
            ) from exc

    def _reserve(self, upload: Upload, end: int) -> None:
        """Count the upload's growth to `end` against the client's waiting bytes, or refuse it."""
        limit, key = self.waiting_limit
        if not self.ctx.waiting.reserve(self.client_id, end - upload.reserved, limit):
            waiting = self.ctx.waiting.waiting(self.client_id)
            self.ctx.uploads_refused[self.client_id] += 1
            self.log.warning(
                "sftp.upload.refused", file=upload.target.name, reason=key, limit_bytes=limit,
                waiting_bytes=waiting, upload_bytes=end,
            )
            raise self._refuse(
                upload, "waiting bytes limit",
                f"Upload refused: files waiting for {self.client_id} would pass {limit} bytes "
                f"(the limit {key}); upload discarded, send it again once earlier files "
                "have been processed",
            )
        upload.reserved = end

    def _refuse(self, upload: Upload, reason: str, message: str) -> asyncssh.SFTPError:
        """Discard the upload now (nothing of it stays on disk) and remember why."""
        upload.refusal = message
        self._discard(upload, reason)
        return asyncssh.SFTPFailure(message)

    def fstat(self, file_obj: object) -> asyncssh.SFTPAttrs:
        self.owner.touch()
        if isinstance(file_obj, ReadHandle):
            return _attrs(os.fstat(file_obj.fd))
        if isinstance(file_obj, Upload) and file_obj.fd is not None:
            return _attrs(os.fstat(file_obj.fd))
        raise asyncssh.SFTPInvalidHandle("invalid handle")

    def fsync(self, file_obj: object) -> None:
        self.owner.touch()
        if isinstance(file_obj, Upload) and file_obj.fd is not None:
            os.fsync(file_obj.fd)

    async def close(self, file_obj: object) -> None:
        self.open_handles -= 1
        self.ctx.handles.give_back(self.user)
        if isinstance(file_obj, ReadHandle):
            os.close(file_obj.fd)
        elif isinstance(file_obj, Upload):
            await self._finish_upload(file_obj)

    async def exit(self) -> None:
        for upload in list(self.uploads):
            self._discard(upload, "session ended")
        # Exit status 0, as OpenSSH's sftp-server: scp (SFTP mode) fails when its ssh does
        # not exit 0, which it cannot without a status (asyncssh only closes the channel).
        with contextlib.suppress(OSError):
            self.channel.exit(0)

    # Finishing an upload

    def _release(self, upload: Upload, *, kept: bool) -> None:
        """The upload's reservation ended: its hidden file is gone (discarded, or renamed
        into the client's folder, where a count finds it)."""
        self.ctx.temps.discard(upload.temp)
        self.ctx.waiting.release(self.client_id, upload.reserved, kept=kept)
        upload.reserved = 0

    def _discard(self, upload: Upload, reason: str) -> None:
        self.uploads.discard(upload)
        self.ctx.writing.discard(upload.local)
        upload.discard()
        self._release(upload, kept=False)
        self.log.warning("sftp.upload.discarded", file=upload.target.name, reason=reason)

    async def _finish_upload(self, upload: Upload) -> None:
        # asyncssh closes the handles left open when a session ends (the channel or the
        # connection gone, EOF, a packet it cannot read: `ending`); only a close the
        # client asked for completes an upload — also one it sent just before its EOF,
        # which was discarded and answered OK when the channel's state decided (a
        # reviewer). asyncssh's close never raises: an exception would stop its clean-up
        # of the session's other handles and its `exit` (their slots and uploads kept).
        if self.ending:
            if upload.refusal is None:  # a refused one was discarded when it was refused
                self._discard(upload, "session ended before close")
            return
        if upload.refusal is not None:
            raise asyncssh.SFTPFailure(upload.refusal)  # discarded when it was refused
        if upload.failed:
            self._discard(upload, "write failed")
            raise asyncssh.SFTPFailure("Write failed; upload discarded")
        fd = upload.fd
        assert fd is not None
        try:
            await asyncio.to_thread(os.fsync, fd)
            st = os.fstat(fd)
            if upload.in_order and upload.hashed_bytes == st.st_size:
                digest = upload.sha.hexdigest()
            else:
                digest = (await asyncio.to_thread(sha256_file, Path(upload.temp))).sha256
        except OSError as exc:
            self._discard(upload, f"cannot finish: {exc}")
            raise
        # From here to the rename there is no await: no other session can interleave. The
        # file stays open, and so locked, until it is renamed (or discarded).
        self.uploads.discard(upload)
        name = upload.target.name
        try:
            local = self._local(upload.target)
            self._refuse_taken(upload.target, local)
        except asyncssh.SFTPError as exc:
            self._discard(upload, f"cannot publish: {exc.reason}")
            raise
        uploader = Uploader(
            sha256=digest, user=self.user, source_ip=self.owner.source_ip,
            key_fingerprint=self.owner.fingerprint, uploaded_as=name,
        )
        receipt = None
        if not fs.is_ignored_name(name):
            receipt = self._new_receipt(name, st.st_size, uploader, upload.target.area)
        try:
            self._take_name(upload.target, local, receipt)
            self._move_in(upload.target, upload.temp, local, receipt)
        except asyncssh.SFTPError as exc:
            self._discard(upload, f"cannot publish: {exc.reason}")
            raise
        except OSError as exc:
            self._discard(upload, f"cannot publish: {exc}")
            raise
        os.close(fd)
        upload.fd = None
        self.ctx.writing.discard(upload.local)
        # Still waiting, now as a complete file in in/.
        self._release(upload, kept=True)
        self._sync_published(local, name)
        self._remember_closed(upload.target, st)
        if receipt is None:
            self.ctx.remember(os.lstat(local), uploader)
        self.log.info(
            "sftp.upload.closed", file=name, size_bytes=st.st_size, sha256=digest,
            visible=receipt is not None, key_fingerprint=self.owner.fingerprint,
        )
        if receipt is not None:
            self.ctx.notify(receipt)

    def _sync_published(self, local: str, name: str) -> None:
        """Make the rename that published `local` durable. It is published already: the
        gateway takes the file and answers it, so a failure here is ours, logged, and not
        the client's — told that its upload failed, a client sends again a file that is
        being paid (a tester)."""
        try:
            fsync_dir(Path(local).parent)
        except OSError as exc:
            self.log.error("sftp.sync_failed", file=name, error=str(exc))

    # Changing the folder

    async def rename(self, oldpath: bytes, newpath: bytes) -> None:
        old, new = self._resolve(oldpath), self._resolve(newpath)
        reason = fs.may_rename(self.mode, old, new)
        if reason:
            raise self._deny("rename", f"{old.text()} -> {new.text()}", reason)
        old_local = self._local(old)
        st = self._regular(old_local)
        uploader: Uploader | None = None
        old_receipt = None
        if not fs.is_ignored_name(new.name):
            if not fs.is_ignored_name(old.name):
                old_receipt = read_receipt(self._receipt_for(old.name, old.area), Path(old_local))
            if old_receipt is None:
                uploader = self.ctx.uploaders.get(file_identity(st))
                if uploader is None:
                    digest = (await asyncio.to_thread(sha256_file, Path(old_local))).sha256
                    if file_identity(self._regular(old_local)) != file_identity(st):
                        raise asyncssh.SFTPFailure("File changed while being renamed")
                    uploader = Uploader(
                        sha256=digest, user=self.user, source_ip=self.owner.source_ip,
                        key_fingerprint=self.owner.fingerprint, uploaded_as=old.name,
                    )
        # No await from here on: the checks below hold when the rename happens.
        new_local = self._local(new)
        self._refuse_taken(new, new_local)
        self._refuse_uploading(new, new_local)
        receipt = None
        if old_receipt is not None:
            receipt = old_receipt.renamed(
                new.name, Path(new_local), self._receipt_for(new.name, new.area)
            )
        elif uploader is not None:
            receipt = self._new_receipt(new.name, st.st_size, uploader, new.area)
        self._take_name(new, new_local, receipt)
        self._move_in(new, old_local, new_local, receipt)
        self._sync_published(new_local, new.name)
        if not fs.is_ignored_name(old.name):
            remove_receipt(self._receipt_for(old.name, old.area))
        if receipt is not None:
            # Visible now: the record of its upload under a temporary name has served.
            self.ctx.uploaders.pop(file_identity(st), None)
        self.log.info("sftp.rename", old=old.name, new=new.name, visible=receipt is not None)
        if receipt is not None:
            self._remember_closed(new, st)  # a stat after the rename, once the file is taken
            self.ctx.notify(receipt)

    async def posix_rename(self, oldpath: bytes, newpath: bytes) -> None:
        await self.rename(oldpath, newpath)  # never overwrites either

    def remove(self, path: bytes) -> None:
        vpath = self._resolve(path)
        reason = fs.may_remove(self.mode, vpath)
        if reason:
            raise self._deny("remove", vpath, reason)
        local = self._local(vpath)
        self._regular(local)
        os.unlink(local)
        self.log.info("sftp.remove", file=vpath.name)

    def setstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        vpath = self._resolve(path)
        reason = fs.may_set_times(self.mode, vpath)
        if reason:
            raise self._deny("setstat", vpath, reason)
        local = self._local(vpath)
        try:
            size = self._regular(local).st_size
        except FileNotFoundError:
            if self._closed_lately(vpath) is None:
                raise
            return  # its own upload, taken since: times set on it would change nothing
        self._set_times(
            "setstat", vpath, attrs, size,
            lambda times: os.utime(local, times, follow_symlinks=False),
        )  # fmt: skip

    def lsetstat(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        self.setstat(path, attrs)

    def fsetstat(self, file_obj: object, attrs: asyncssh.SFTPAttrs) -> None:
        self.owner.touch()
        if isinstance(file_obj, ReadHandle):
            raise self._deny("fsetstat", file_obj.vpath, "file opened read-only")
        if not isinstance(file_obj, Upload):
            raise asyncssh.SFTPInvalidHandle("invalid handle")
        if file_obj.refusal is not None:
            raise asyncssh.SFTPFailure(file_obj.refusal)
        fd = file_obj.fd
        if fd is None:
            raise asyncssh.SFTPInvalidHandle("invalid handle")
        self._set_times(
            "fsetstat", file_obj.target, attrs, os.fstat(fd).st_size,
            lambda times: os.utime(fd, times),
        )  # fmt: skip

    def _set_times(
        self, op: str, vpath: fs.VirtualPath, attrs: asyncssh.SFTPAttrs, size: int,
        apply: Callable[[tuple[int, int]], None],
    ) -> None:
        """Apply a new access/modification time. Permissions are the gateway's and are
        ignored; a size equal to the file's (scp sets the size it wrote) changes nothing."""
        if attrs.uid is not None or attrs.gid is not None:
            raise self._deny(op, vpath, "owners cannot be changed (only times may be)")
        if attrs.size is not None and attrs.size != size:
            raise self._deny(
                op, vpath, f"the size ({size} bytes) cannot be changed (only times may be)"
            )
        if attrs.atime is not None and attrs.mtime is not None:
            apply((attrs.atime, attrs.mtime))

    # Refused wherever asked, the same way: `mkdir /foo` said "No such file" (a tester), as
    # if a folder could be made elsewhere.
    def mkdir(self, path: bytes, attrs: asyncssh.SFTPAttrs) -> None:
        raise self._deny("mkdir", self._shown(path), "folders cannot be created")

    def rmdir(self, path: bytes) -> None:
        raise self._deny("rmdir", self._shown(path), "folders cannot be removed")

    def symlink(self, oldpath: bytes, newpath: bytes) -> None:
        raise self._deny("symlink", self._shown(newpath), "links cannot be created")

    def link(self, oldpath: bytes, newpath: bytes) -> None:
        raise self._deny("link", self._shown(newpath), "links cannot be created")

    def _shown(self, path: bytes) -> str:
        """`path` for the log: as resolved, or as sent where it names nothing."""
        try:
            return self._resolve(path).text()
        except asyncssh.SFTPNoSuchFile:
            return path[:PATH_SHOWN_BYTES_MAX].decode(errors="replace")

    def statvfs(self, path: bytes) -> asyncssh.SFTPVFSAttrs:
        raise asyncssh.SFTPOpUnsupported("statvfs not supported")

    def fstatvfs(self, file_obj: object) -> asyncssh.SFTPVFSAttrs:
        raise asyncssh.SFTPOpUnsupported("fstatvfs not supported")

