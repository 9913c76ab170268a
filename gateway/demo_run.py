"""What `ekase-gateway demo` prints and runs: the commands to type, as this shell can run
them, for the installation `gateway.demo` makes (or finds)."""

from __future__ import annotations

import datetime as dt
import os
import shlex
import shutil
import sys
from pathlib import Path

from gateway import demo_rates, demo_signing, demo_timing, logs
from gateway.clock import Clock, SystemClock
from gateway.demo import CLIENTS, UPLOADER, Demo, ensure_demo, sample_batches


def program() -> str:
    """This program as the user can type it from here: `ekase-gateway` where that is the
    one on PATH, else the path it was started by (`make run`: `.venv/bin/ekase-gateway`,
    which a new shell does not find by name)."""
    started = Path(sys.argv[0])
    found = shutil.which(PROGRAM)
    if started.name != PROGRAM:  # not started as itself (`python -m`, a test)
        return PROGRAM
    if found is not None and Path(found).resolve() == started.resolve():
        return PROGRAM
    return shown(started)


PROGRAM = "ekase-gateway"


def shown(path: Path) -> str:
    """A path as the user can type it from here: relative when below the current folder
    (through a symlink as given: a `.venv` that links elsewhere stays `.venv/…`)."""
    whole = os.path.abspath(path)
    relative = os.path.relpath(whole)
    return relative if not relative.startswith("..") else whole


def upload_command(demo: Demo, sample: str = "all-valid") -> str:
    """The exact bash command that uploads a sample with OpenSSH's sftp client."""
    port = demo.settings.sftp.port
    folder = demo.folder
    batch = f"put {shown(folder / 'samples' / f'{sample}.xml')} /in/"
    return " ".join([
        "sftp",
        "-i", shlex.quote(shown(folder / "keys" / UPLOADER)),
        "-P", str(port),
        "-o", "IdentitiesOnly=yes",
        "-o", shlex.quote(f"UserKnownHostsFile={shown(folder / 'known_hosts')}"),
        f"{UPLOADER}@127.0.0.1",
        "<<<", shlex.quote(batch),
    ])


def instructions(demo: Demo, now: dt.datetime) -> str:
    out = shown(demo.settings.spool_dir / "clients" / CLIENTS[0].id / "out")
    config = shown(demo.config)
    verb = "created" if demo.created else "reused"
    samples = ", ".join(sorted(p.name for p in (demo.folder / "samples").glob("*.xml")))
    return "\n".join([
        f"Demo installation {verb}: {shown(demo.folder)} (configuration {config})",
        f"Samples: {samples}",
        "",
        "Upload a sample (in another terminal, from this folder):",
        f"  {upload_command(demo)}",
        "",
        f"The answer (pain.002 and its .sig seal) appears in {out}/",
        f"  (over SFTP: /out of {UPLOADER}; read-only user: iestade-a-view)",
        "Uploading the same bytes again returns the original answer once more.",
        f"Status: {program()} status -c {config}",
        "",
        *demo_timing.render(
            demo.settings, sample_batches(demo.samples_day), now,
            demo_rates.exchange(demo.settings, CLIENTS, now), _uploaded_before(demo), shown,
        ),
        "",
        *demo_signing.instructions(demo.folder, shown, program()),
        "",
    ])


def _uploaded_before(demo: Demo) -> dict[str, str]:
    """The samples of a reused demo already uploaded (their bytes known), with what they
    were answered: uploaded again, they get that answer once more (SPEC §6)."""
    import hashlib

    from sqlalchemy import select

    from gateway import db
    from ledger.engine import make_engine

    shas = {
        hashlib.sha256(path.read_bytes()).hexdigest(): path.stem
        for path in (demo.folder / "samples").glob("*.xml")
    }
    f = db.files.c
    engine = make_engine(demo.settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(f.id, f.sha256, f.group_status).where(
                    f.client_id == CLIENTS[0].id, f.sha256.in_(sorted(shas))
                )
            ).all()
    finally:
        engine.dispose()
    return {shas[r.sha256]: f"file {r.id}, answered {r.group_status}" for r in rows}


def main(
    folder: Path, *, port: int | None = None, run: bool = False, clock: Clock | None = None
) -> int:
    clock = clock or SystemClock()
    demo = ensure_demo(folder, port=port, now=clock.now())
    print(instructions(demo, clock.now()), flush=True)
    if not run:
        print(f"Start it with: {program()} run -c {shown(demo.config)}", flush=True)
        return 0
    print("Starting the gateway (Ctrl-C stops it) …", flush=True)
    sys.stdout.flush()
    from gateway import daemon

    logs.configure(demo.settings.log_file)
    return daemon.run(demo.settings)
