"""SPEC §11 through the real daemon and its SFTP server, on SQLite and PostgreSQL: a
two-level batch uploaded by the ERP waits, one signature leaves it waiting with the right
message, the second executes it; bad containers are answered and change nothing; a
SIGKILL while a signature arrives loses nothing and never executes twice."""

from __future__ import annotations

import datetime as dt
import io
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import create_engine, select

from gateway import db
from gateway.testpki import Pki
from tests.integration.daemon_fixtures import (
    FUNDED_MINOR,
    PAIN002,
    Install,
    answers,
    batch,
    close_sftp,
    iban,
    ledger_balance_minor,
    make_install,
    running_daemon,
    sftp_client,
    wait_for,
)
from tests.signature_fixtures import bad_containers, configure, make_pki_files, signed


@pytest.fixture
def signing_install(tmp_path: Path, database_url: str) -> Iterator[tuple[Install, Pki]]:
    install = make_install(
        tmp_path / "gw", rescan_seconds=1, settle_seconds=0, database_url=f'"{database_url}"'
    )
    _add_view_user(install)
    now = dt.datetime.now(dt.UTC)
    pki, files = make_pki_files(tmp_path / "pki", now)
    configure(
        install.config, files, client_id="alpha", iban=iban("alpha"), level=2,
        signatories={"First": ("first", "first"), "Second": ("second", "second")},
    )  # fmt: skip
    yield install, pki


def _add_view_user(install: Install) -> None:
    """A person of client alpha who may only look (mode = "view")."""
    private = install.base / "keys" / "alpha-view"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(private)],
                   check=True)  # fmt: skip
    public = private.with_name("alpha-view.pub").read_text().strip()
    (install.base / "keys" / "alpha-view.authorized").write_text(public + "\n")
    install.keys["alpha-view"] = private
    lines = install.config.read_text().splitlines()
    start = lines.index('id = "alpha"')
    at = next(i for i in range(start, len(lines)) if lines[i] == "[[client]]")
    lines[at:at] = [
        "  [[client.user]]", '  name = "alpha-view"', '  kind = "person"', '  mode = "view"',
        '  authorized_keys = "keys/alpha-view.authorized"',
    ]  # fmt: skip
    install.config.write_text("\n".join(lines) + "\n")


def _put(install: Install, name: str, data: bytes) -> None:
    client = sftp_client(install, "alpha-erp")
    try:
        # No confirming stat: the daemon may already have taken the file out of /in.
        client.putfo(io.BytesIO(data), f"/in/{name}", confirm=False)
    finally:
        close_sftp(client)


def _infos(path: Path) -> str:
    tree = etree.parse(str(path))
    return " ".join(e.text or "" for e in tree.iter(f"{PAIN002}AddtlInf"))


def _reasons(path: Path) -> list[str]:
    tree = etree.parse(str(path))
    group = tree.find(f".//{PAIN002}OrgnlGrpInfAndSts")
    assert group is not None
    return [e.text or "" for e in group.iter(f"{PAIN002}Cd")]


def _state(install: Install) -> list[str]:
    engine = create_engine(install.settings.database_url)
    try:
        with engine.connect() as conn:
            return [r.state for r in conn.execute(select(db.awaiting))]
    finally:
        engine.dispose()


def _answer_count(install: Install, n: int) -> list[Path]:
    out = install.folder("alpha", "out")
    assert wait_for(lambda: len(answers(out)) >= n, 30), [a.path.name for a in answers(out)]
    return [a.path for a in answers(out)]


def test_two_level_batch_through_sftp(signing_install: tuple[Install, Pki]) -> None:
    """Waits; the first signature leaves it waiting ("the second right must sign"); the
    second executes it; a container of junk and one from another CA change nothing."""
    install, pki = signing_install
    now = dt.datetime.now(dt.UTC)
    data = batch("SIG-1", "alpha", 3)
    with running_daemon(install) as daemon:
        daemon.wait_started()
        _put(install, "pay.xml", data)
        [first] = _answer_count(install, 1)
        assert answers(install.folder("alpha", "out"))[0].group_status == "PDNG"
        assert "0 of 2 signatures" in _infos(first)
        assert _state(install) == ["waiting"]

        bad = bad_containers("pay.xml", data, pki, now)
        bad["junk.asice"] = (b"PK\x03\x04 not a container", "DS0B")
        seen = 1
        for name, (container, code) in bad.items():
            _put(install, name, container)
            seen += 1
            answer = _answer_count(install, seen)[-1]
            assert _reasons(answer) == [code], (name, _infos(answer))
        _put(install, "first.asice", signed("pay.xml", data, pki.first, now))
        one = _answer_count(install, seen + 1)[-1]
        assert "1 of 2 signatures; a signatory with the second right must sign" in _infos(one)
        assert _state(install) == ["waiting"]
        assert ledger_balance_minor(install, "alpha") == FUNDED_MINOR

        _put(install, "second.asice", signed("pay.xml", data, pki.second, now))
        paths = _answer_count(install, seen + 3)
        found = answers(install.folder("alpha", "out"))
        assert "authorised" in _infos(paths[seen + 1])
        assert found[seen + 2].original_msg_id == "SIG-1"
        assert found[seen + 2].group_status in ("ACSC", "ACCP"), daemon.tail()
        assert _state(install) == ["executed"]
        late = signed("pay.xml", data, pki.first, now + dt.timedelta(seconds=5))
        _put(install, "late.asice", late)
        answer = _answer_count(install, seen + 4)[-1]
        said = _infos(answer)  # executed, or (after a cut-off: ACCP) authorised, its day ahead
        assert "changes nothing" in said and ("executed" in said or "authorised" in said), said
        archive = install.spool / "archive" / "alpha"
        rejected = install.spool / "rejected" / "alpha"
        expected = sorted([*bad, "first.asice", "second.asice", "late.asice"])

        def kept() -> list[str]:
            shelved = [*archive.glob("*/*.asice"), *rejected.glob("*/*.asice")]
            return sorted(p.name.split("__")[-1] for p in shelved)

        assert wait_for(lambda: kept() == expected, 10), kept()  # every container is kept
        assert wait_for(
            lambda: not any((install.spool / "awaiting" / "alpha").glob("*pay.xml")), 10
        )
    assert list(archive.glob("*/*pay.xml"))


def test_sigkill_while_a_signature_arrives(signing_install: tuple[Install, Pki]) -> None:
    """A daemon killed while the completing signature is being processed: after a restart
    the batch has executed exactly once and every signature is recorded."""
    install, pki = signing_install
    now = dt.datetime.now(dt.UTC)
    data = batch("SIG-2", "alpha", 50)
    with running_daemon(install) as daemon:
        daemon.wait_started()
        _put(install, "pay.xml", data)
        _answer_count(install, 1)
        _put(install, "first.asice", signed("pay.xml", data, pki.first, now))
        _answer_count(install, 2)
        _put(install, "second.asice", signed("pay.xml", data, pki.second, now))
        work = install.spool / "work" / "alpha"
        wait_for(lambda: any(work.glob("*second.asice")), 5, interval=0.001)
        daemon.signal(signal.SIGKILL)  # while it is claimed, or just after
        daemon.wait(10)
    with running_daemon(install) as daemon:
        daemon.wait_started()
        _answer_count(install, 4)
        assert wait_for(lambda: _state(install) == ["executed"], 20), daemon.tail()
    found = answers(install.folder("alpha", "out"))
    # the batch's own reports list its payments (the completing container's answer gives
    # the group's status alone)
    finals = [
        a for a in found
        if a.original_msg_id == "SIG-2" and a.group_status != "PDNG" and a.tx_statuses
    ]  # fmt: skip
    assert len(finals) == 1, [(a.path.name, a.group_status) for a in found]
    assert sum(finals[0].tx_statuses.values()) == 50
    engine = create_engine(install.settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(db.signatures)).all()
            paid = conn.execute(
                select(db.payments.c.id).where(db.payments.c.msg_id == "SIG-2")
            ).all()
    finally:
        engine.dispose()
    assert sorted(r.signatory for r in rows) == ["First", "Second"]
    assert len(paid) == 50


def test_view_user_cannot_upload_a_container(signing_install: tuple[Install, Pki]) -> None:
    """A `view` user of the client cannot put a container into /in (SPEC §4, §11): the
    upload is refused by the server, nothing arrives, the batch keeps waiting."""
    install, pki = signing_install
    now = dt.datetime.now(dt.UTC)
    data = batch("SIG-3", "alpha", 1)
    with running_daemon(install) as daemon:
        daemon.wait_started()
        _put(install, "pay.xml", data)
        _answer_count(install, 1)
        client = sftp_client(install, "alpha-view")
        try:
            with pytest.raises(OSError):
                client.putfo(io.BytesIO(signed("pay.xml", data, pki.first, now)), "/in/x.asice")
        finally:
            close_sftp(client)
        assert list(install.folder("alpha", "in").iterdir()) == []
        assert len(answers(install.folder("alpha", "out"))) == 1
        assert _state(install) == ["waiting"]
