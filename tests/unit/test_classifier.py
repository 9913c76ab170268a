"""The budget classifier file (SPEC §12): what a good one gives the rules, and how a bad
one stops the start with one line naming the row and the problem."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.inbound import classifier
from gateway.inbound.classifier import Kind
from gateway.settings import load

SHIPPED = Path(__file__).parents[2] / "gateway" / "data" / "classification.csv"
HEADER = "code;name;kind;valid_from;valid_until\n"


def test_the_shipped_classifier_has_the_main_ekk_groups_and_revenue_and_financing_codes() -> None:
    """The demo's and the tests' classifier is the real one in small: EKK groups with their
    Latvian names, revenue and financing codes."""
    found = classifier.parse(SHIPPED.read_text(encoding="utf-8"))
    day = dt.date(2026, 11, 25)
    for code in ("1000", "2000", "2221", "2231", "3000", "5000", "7000"):
        entry = found.on(code, day)
        assert entry is not None and entry.kind is Kind.EXPENSE, code
    assert found.name("2221", day).startswith("Izdevumi par siltumenerģiju")
    kinds = {p.kind for periods in found.codes.values() for p in periods}
    assert kinds == {Kind.EXPENSE, Kind.REVENUE, Kind.FINANCING}


def test_bom_and_windows_line_ends_are_accepted() -> None:
    text = "\ufeff" + (HEADER + "2221;Siltums;expense;2020-01-01;\n").replace("\n", "\r\n")
    found = classifier.parse(text)
    assert found.on("2221", dt.date(2026, 1, 1)) is not None


def test_a_code_renamed_from_a_date_has_two_periods() -> None:
    text = HEADER + "2231;Vecais;expense;2010-01-01;2025-12-31\n2231;Jaunais;expense;2026-01-01;\n"
    found = classifier.parse(text)
    assert found.name("2231", dt.date(2025, 6, 1)) == "Vecais"
    assert found.name("2231", dt.date(2026, 6, 1)) == "Jaunais"


def test_validity_ends_on_its_last_day() -> None:
    found = classifier.parse(HEADER + "2239;Citi;expense;2010-01-01;2026-11-24\n")
    assert found.on("2239", dt.date(2026, 11, 24)) is not None
    assert found.on("2239", dt.date(2026, 11, 25)) is None
    assert "not valid on 2026-11-25" in found.why_not("2239", dt.date(2026, 11, 25))
    assert found.why_not("9999", dt.date(2026, 11, 25)) == "9999 is not in the classifier"


@pytest.mark.parametrize(
    ("rows", "row", "problem"),
    [
        ("2221;A;expense;2020-01-01;\n2221;B;expense;2020-01-01;\n", 3, "duplicate code 2221"),
        (
            "2221;A;expense;2020-01-01;\n2221;B;expense;2024-01-01;\n",
            3,
            "validity of 2221 overlaps",
        ),
        (
            "2221;A;expense;2020-01-01;2024-06-30\n2221;B;expense;2024-06-30;\n",
            3,
            "overlaps row 2",
        ),
        ("2221;A;izdevumi;2020-01-01;\n", 2, "unknown kind 'izdevumi'"),
        ("2221;A;expense;2020-13-01;\n", 2, "valid_from '2020-13-01' is not a date"),
        ("2221;A;expense;2020-01-01;2019-01-01\n", 2, "before it starts"),
        ("2221;A;expense;2020-01-01\n", 2, "4 columns, expected 5"),
        ("22 21;A;expense;2020-01-01;\n", 2, "code '22 21'"),
        ("2221;;expense;2020-01-01;\n", 2, "name of 2221 is empty"),
    ],
)
def test_a_bad_row_is_named_with_its_problem(rows: str, row: int, problem: str) -> None:
    with pytest.raises(classifier.ClassifierError) as caught:
        classifier.parse(HEADER + rows)
    assert caught.value.row == row
    assert problem in str(caught.value)
    assert str(caught.value).startswith(f"row {row}: ")


def test_a_wrong_header_and_an_empty_file_are_refused() -> None:
    with pytest.raises(classifier.ClassifierError, match="row 1: header must be"):
        classifier.parse("kods;nosaukums;veids;no;lidz\n")
    with pytest.raises(classifier.ClassifierError, match="row 1: the file is empty"):
        classifier.parse("\ufeff")
    # A header alone would leave every payment of a budget account RJCT RR05.
    with pytest.raises(classifier.ClassifierError, match="row 1: a header and no code"):
        classifier.parse(HEADER + "\r\n\r\n")


def test_a_bad_classifier_file_stops_the_start_with_one_line(tmp_path: Path) -> None:
    """What the operator sees: the key, the file, the row and the problem, on one line."""
    (tmp_path / "classification.csv").write_bytes(
        ("\ufeff" + HEADER + "2221;A;expense;2020-01-01;\n2221;B;expense;2020-01-01;\n")
        .replace("\n", "\r\n")
        .encode()
    )
    (tmp_path / "gateway.toml").write_text(
        '[gateway]\nclassification = "classification.csv"\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "gateway.toml")
    message = str(caught.value)
    assert "classification" in message and "row 3: duplicate code 2221 (also row 2)" in message
    assert "\n" not in message


def test_a_good_classifier_file_is_loaded_with_the_settings(tmp_path: Path) -> None:
    (tmp_path / "classification.csv").write_bytes(SHIPPED.read_bytes())
    (tmp_path / "gateway.toml").write_text(
        '[gateway]\nclassification = "classification.csv"\n', encoding="utf-8"
    )
    settings = load(tmp_path / "gateway.toml")
    assert settings.classifier is not None
    assert settings.classifier.on("7000", dt.date(2026, 11, 25)) is not None
