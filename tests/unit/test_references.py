"""A transfer's reference names the file whose payments it carries (statements rely on it)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.references import FileRefs, payment_reference, reference_file_id, reference_seq

file_ids = st.integers(min_value=1, max_value=10**10 - 1)


@given(file_ids, st.integers(min_value=0, max_value=10**8 - 1))
def test_a_payment_reference_names_its_file(file_id: int, seq: int) -> None:
    assert reference_file_id(payment_reference(file_id, seq)) == file_id


@given(file_ids, st.integers(min_value=0, max_value=10**8 - 1))
def test_a_payment_reference_names_its_position(file_id: int, seq: int) -> None:
    """Statements read a payment booked on its own by (file, position), the index every
    file's payments have."""
    assert reference_seq(payment_reference(file_id, seq)) == seq


@given(file_ids, st.integers(min_value=0, max_value=99_999), st.integers(1, 999))
def test_a_batch_reference_names_its_file(file_id: int, pmt_seq: int, run: int) -> None:
    reference = FileRefs("c", "ab" * 32, file_id, run).batch_reference(pmt_seq)
    assert reference_file_id(reference) == file_id
    assert len(reference) <= 35


def test_batch_and_run_references_name_no_position() -> None:
    refs = FileRefs("c", "ab" * 32, 7, 1)
    assert reference_seq(refs.batch_reference(3)) is None
    assert reference_seq(refs.singles_reference(0)) is None
    assert reference_seq("FUND2026120100000001") is None


def test_other_transfers_name_no_file() -> None:
    assert reference_file_id("FUND2026120100000001") is None
    assert reference_file_id("EK") is None
    assert reference_file_id("EKabcdefghij00000001") is None
