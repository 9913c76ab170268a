"""A trial run (SPEC §15): a file from a client's `test/`, checked exactly as in `in/`
and answered, with nothing executed, booked or reserved and no MsgId used up.

The file goes through the very stages of a new file (`newfile.new_file`: XSD, rules,
funds at this moment, due dates, execution in memory and in the ledger) inside a
savepoint of its own; its first pain.002 is taken from the outbox and the savepoint is
rolled back, so nothing it did remains. The answer is that report made a trial's
(`trial_answer`): a MsgId of its own, what would execute now `ACCP` instead of `ACSC`
(without the references of transfers that were never made), what would wait `PDNG`
with why, rejections as usual, and "trial run, nothing executed" at group level. It
is issued as `<stamp>_TEST_pain.002.001.03_<MsgId>.xml`, with the claim's name on its
outbox row: a restart finds the trial answered by it and only delivers and shelves
(onto `trials/`).

Signatures are reported, not required (SPEC §11, §15): a batch debiting an account
that needs them is checked as if signed — each payment says what would happen to it
then, and its group is what its payments give — and the answer says how many
signatures it would need and whose ("would need 2 signatures: …"), as the first answer
to the real batch says what it waits for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, select

from gateway import (
    authorisation,
    container_data,
    db,
    reading,
    record,
    signature_checks,
    signature_run,
    signatures_kept,
)  # fmt: skip
from gateway.environment import Environment
from gateway.inbound import asice, route, xades
from gateway.inbound.findings import Finding
from gateway.inbound.intake import Intake
from gateway.inbound.parsed import ParsedFile
from gateway.inbound.reader import Reading
from gateway.newfile import Rejected, new_file, reject
from gateway.outbound import answers, outbox, pain002_v03
from gateway.outbound.outbox import PlainCopy
from gateway.outbound.trial_answer import trial_answer
from gateway.reasons import Reason
from gateway.shelving import Outcome
from gateway.signatories import Classified, authorise, required_level
from gateway.statuses import GroupStatus
from ledger.tx import LedgerTx

MESSAGE = "TEST_" + pain002_v03.MESSAGE  # names the answer <stamp>_TEST_pain.002.001.03_<MsgId>
SHELF = "trials"
_NOT_FILE = 0  # a trial has no row in gw_files: its shelf name carries this number


def run(
    env: Environment, tx: LedgerTx, intake: Intake, reader: Reading | None, known: Any
) -> Outcome:
    """Check the trial file in `intake` and answer it; its Outcome (shelf `trials`).
    `known`: the row of a file with the same bytes this client sent before, if any."""
    conn = tx.conn
    answered = outbox.answer_to_claim(conn, intake.client_id, intake.claim_name)
    if answered is not None:  # answered by a run that stopped before shelving it
        return Outcome(_NOT_FILE, SHELF, "TEST", answer=answered, recovered=True)
    request = route.request_message(intake.path)
    if request is not None:  # the pull side has no trial (its answers change nothing)
        return _not_tried(env, tx, intake, reader, known, request)
    if route.is_container(intake.path, intake.original_name):
        # also one in/ took: what in/ would do with it again depends on its batch
        return _container(env, tx, intake)
    if known is not None:
        return _repeated(env, conn, intake, known)
    checked, report, debited = _checked(
        env, tx, intake, lambda scratch: new_file(env, tx, intake, reader, scratch)
    )
    waits = _would_wait(env, intake.client_id, debited, checked)
    if waits is not None and checked.group_status == GroupStatus.RJCT.value:
        # in/ would hold it for them first and judge its payments once signed: the trial
        # says both, its status the payments' (SPEC §15: levels reported, not required)
        return _answered(env, conn, intake, checked, report, None, f"{waits} first")
    return _answered(env, conn, intake, checked, report, waits)


def _read_echo(reader: Reading | None) -> ParsedFile | None:
    """What the batch reader could read of a file that is not a batch (its id, as a
    camt.055 keeps it in `Assgnmt/Id`), for the answer to echo."""
    first = next(iter(reader), None) if reader is not None else None
    return first if isinstance(first, ParsedFile) else None


def _answered(
    env: Environment, conn: Connection, intake: Intake, checked: Outcome, report: bytes,
    waits: str | None, note: str | None = None, codes: tuple[Reason, ...] = (),
) -> Outcome:
    """The trial's answer (`report`, the pain.002 of its run `checked`, made a trial's)
    issued; its Outcome. `waits`: what signatures it would need, if any; `note`: what
    a container's signatures would do, `codes` the reasons of those that would not count."""
    msg_id = answers.new_msg_id(conn, intake.now_local)
    name = _issue(conn, intake, msg_id, trial_answer(report, msg_id, waits, note, codes))
    status = "ACCP" if checked.group_status == "ACSC" else checked.group_status
    counts = dict(checked.counts)
    if "ACSC" in counts:
        counts["ACCP"] = counts.get("ACCP", 0) + counts.pop("ACSC")
    info = "; ".join(i for i in (waits, note, checked.info) if i) or None
    return Outcome(
        _NOT_FILE, SHELF, status, checked.reason, info, msg_id=checked.msg_id,
        counts=counts, answer=name, rejected=checked.rejected,
    )  # fmt: skip


def _not_tried(
    env: Environment, tx: LedgerTx, intake: Intake, reader: Reading | None, known: Any,
    request: str,
) -> Outcome:
    """A request (camt.055, camt.060) in test/, new or already sent to in/: RJCT FF01,
    echoing its id."""
    info = f"a {request} cannot be tried: test/ takes batches (pain.001.001.03); requests go to in/"
    if known is not None:
        return _refused_as(env, tx.conn, intake, known, Reason.FF01, info)
    echo = _read_echo(reader)
    checked, report, _ = _checked(
        env, tx, intake, lambda _: reject(env, tx.conn, intake, Finding(Reason.FF01, info), echo)
    )
    return _answered(env, tx.conn, intake, checked, report, None)


def _repeated(env: Environment, conn: Connection, intake: Intake, known: Any) -> Outcome:
    """Bytes this client sent before: in `in/` they would not be executed again (SPEC
    §6, the earlier answer delivered once more), so the trial cannot be their first run.
    It is answered RJCT NARR saying so, echoing the earlier file's group header."""
    earlier = f"{known.group_status} {known.reason}" if known.reason else known.group_status
    info = (
        f"the same bytes as file {known.id} ({known.original_name}), answered {earlier}: "
        "from in/ they would not be executed again, its answer would be delivered once more"
    )
    return _refused_as(env, conn, intake, known, Reason.NARR, info)


def _refused_as(
    env: Environment, conn: Connection, intake: Intake, known: Any, reason: Reason, info: str
) -> Outcome:
    """The trial RJCT `reason`, echoing the group header of the file `known` it repeats."""
    msg_id = answers.new_msg_id(conn, intake.now_local)
    report = _group_report(env, intake, known, msg_id, GroupStatus.RJCT, reason, info)
    name = _issue(conn, intake, msg_id, trial_answer(report, msg_id))
    return Outcome(
        _NOT_FILE, SHELF, GroupStatus.RJCT.value, reason, info, msg_id=known.msg_id, answer=name
    )


def _group_report(
    env: Environment, intake: Intake, known: Any, msg_id: str, status: GroupStatus,
    reason: Reason | None, info: str,
) -> bytes:
    """A pain.002 of the group's `status` alone for the file `known`, echoing its header
    (compressed, as the outbox keeps it)."""
    return answers.build_group_only(
        status=status, msg_id=msg_id, created_at=intake.now_local, bic=env.settings.bic,
        original_msg_id=known.msg_id, original_message=known.message,
        original_created_at=answers.echoed_created_at(known.msg_created_at),
        nb_of_txs=known.nb_of_txs if known.msg_id is not None else None,
        ctrl_sum=answers.echoed_ctrl_sum(known.ctrl_sum), reason=reason, info=info,
    )  # fmt: skip


def _issue(conn: Connection, intake: Intake, msg_id: str, body: bytes) -> str:
    """The trial's answer (compressed) into the outbox, under the claim's name; the
    answer's name."""
    _, name = outbox.enqueue(
        conn,
        client_id=intake.client_id,
        message=MESSAGE,
        msg_id=msg_id,
        created_local=intake.now_local,
        body=body,
        claim_name=intake.claim_name,
    )
    return name


def _levels(env: Environment, client_id: str, debited: list[str]) -> dict[str, int]:
    """The signature level of each account in `debited` (0: none needed)."""
    levels = authorisation.levels_of(env.settings.client(client_id))
    return {iban: levels.get(iban, 0) for iban in debited}


def _would_wait(
    env: Environment, client_id: str, debited: list[str], checked: Outcome
) -> str | None:
    """What signatures the batch, debiting `debited`, would need (None: none, or it is
    rejected as a whole, which in/ answers at once)."""
    level = required_level(_levels(env, client_id, debited))
    if level == 0 or checked.reason is not None:
        return None
    plural = "s" if level > 1 else ""
    return f"would need {level} signature{plural}: {authorisation.needs(level)}"


def _container(env: Environment, tx: LedgerTx, intake: Intake) -> Outcome:
    """A signature container in test/: its data file checked as a batch would be (SPEC
    §15), and its signatures as in/ would judge them (SPEC §11), counting towards the
    level of the accounts it debits; nothing is recorded or executed."""
    path = container_data.scratch_path(env, intake)
    found = asice.read_container(
        intake.path, unzipped_bytes_max=signature_run.unzipped_bytes_max(env), scratch=path
    )
    if isinstance(found, asice.ContainerProblem):
        problem = Finding(Reason.DS0B, found.describe())
        checked, report, _ = _checked(
            env, tx, intake, lambda _: reject(env, tx.conn, intake, problem, None)
        )
        return _answered(env, tx.conn, intake, checked, report, None)
    try:
        data = container_data.taken_in(intake, found, path)
        known = record.known_file(tx.conn, data)
        if known is not None:
            waiting = authorisation.waiting_row(tx.conn, intake.client_id, known.sha256)
            if waiting is not None and waiting.state == authorisation.WAITING:
                return _signing(env, tx, intake, found, known, waiting)
            return _repeated(env, tx.conn, intake, known)
        with reading.read(path, env.settings) as reader:
            reader.digest()
            checked, report, debited = _checked(
                env, tx, data, lambda scratch: new_file(env, tx, data, reader, scratch)
            )
    finally:
        path.unlink(missing_ok=True)
    if checked.group_status == GroupStatus.RJCT.value:  # its signatures would not matter
        return _answered(env, tx.conn, intake, checked, report, None)
    checks = signature_checks.verify(env, found, intake)
    auth = authorise(
        _levels(env, intake.client_id, debited),
        authorisation.signatories_of(env.settings.client(intake.client_id)),
        signature_checks.signers_of(checks, intake),
    )  # fmt: skip
    note, codes = _judged(checks, auth.signers)
    if auth.level == 0 or auth.complete:  # it would execute
        note += f" ({auth.describe()})" if auth.level else ""
        return _answered(env, tx.conn, intake, checked, report, None, note, codes)
    waits = f"would need more signatures: {auth.describe()}"
    return _answered(env, tx.conn, intake, checked, report, waits, note, codes)


def _judged(
    checks: tuple[xades.SignatureCheck, ...], signers: Sequence[Classified]
) -> tuple[str, tuple[Reason, ...]]:
    """What in/ would say of a container's signatures (`signers`: those the level rule
    counted of them): in words, and the reason codes of those that would not count."""
    judged = list(signature_checks.judge(checks, signers))
    said = [f"{check.source}: {detail}" for check, _, _, detail in judged]
    text = "; ".join(said or [signature_checks.NO_SIGNATURE])
    return "this container's signatures: " + text, signature_checks.codes(judged)


def _signing(
    env: Environment, tx: LedgerTx, intake: Intake, container: asice.Container,
    known: Any, waiting: Any,
) -> Outcome:
    """A container for a batch waiting for signatures (`known`, its waiting row
    `waiting`): its signatures judged as in/ would, counted with those the batch has
    received (SPEC §11, §15), and the batch run as in/ would run it once authorised —
    each payment judged now, as if signed — with how many signatures it would still
    need."""
    earlier = signatures_kept.counted_so_far(tx.conn, waiting)
    checks = signature_checks.verify(env, container, intake)
    signers = signature_checks.signers_of(checks, intake)
    auth = authorisation.authorise_waiting(env, waiting, earlier, signers)
    note, codes = _judged(checks, auth.signers)
    batch = f"file {known.id} ({known.original_name}), waiting for signatures"
    checked, report, _ = _checked(
        env, tx, intake,
        lambda scratch: authorisation.run_batch(env, tx, waiting, scratch, intake.received),
    )
    if auth.complete:
        note += f". {batch}: {auth.describe()}; it would execute, each payment as below"
        return _answered(env, tx.conn, intake, checked, report, None, note, codes)
    waits = f"{batch}: it would need more signatures: {auth.describe()}"
    return _answered(env, tx.conn, intake, checked, report, waits, note, codes)


def _checked(
    env: Environment, tx: LedgerTx, intake: Intake, run: Callable[[dict[int, PlainCopy]], Outcome]
) -> tuple[Outcome, bytes, list[str]]:
    """The file's `run` as if it came from `in/`, undone: its Outcome, first report (compressed) and
    the accounts its payments debit."""
    scratch: dict[int, PlainCopy] = {}
    inner = tx.savepoint()
    try:
        try:
            outcome = run(scratch)
        except Rejected as late:
            inner.rollback()
            inner = tx.savepoint()
            outcome = reject(env, tx.conn, intake, late.finding, late.parsed)
        body = _first_report(tx.conn, outcome.file_id)
        p = db.payments.c
        debited = tx.conn.execute(
            select(p.debtor_iban).where(p.file_id == outcome.file_id).distinct()
        ).scalars()
        accounts = sorted(str(iban) for iban in debited if iban)
    finally:
        inner.rollback()
        for copy in scratch.values():
            copy.discard()
    return outcome, body, accounts


def _first_report(conn: Connection, file_id: int) -> bytes:
    f, o = db.files.c, db.outbox.c
    first = select(f.first_outbox_id).where(f.id == file_id).scalar_subquery()
    return bytes(conn.execute(select(o.body).where(o.id == first)).scalar_one())
