"""A finding: an expected problem with input, as a value."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.reasons import Reason

additional_info_chars_max = 105  # pain.002 AddtlInf is Max105Text


@dataclass(frozen=True, slots=True)
class Finding:
    reason: Reason
    info: str

    def short(self) -> str:
        """The English `AddtlInf` text, cut to what pain.002 allows."""
        text = " ".join(self.info.split())
        if len(text) <= additional_info_chars_max:
            return text
        return text[: additional_info_chars_max - 1] + "…"


def account_in_status(element: str, iban: str, status: str) -> str:
    """AC04's and AC06's text, when a file arrives and when a payment executes:
    `DbtrAcct LV… is closed`."""
    return f"{element} {iban} is {status}"
