"""Links an operator follows from the shipped files lead somewhere."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _anchors(markdown: str) -> set[str]:
    """GitHub-style anchors of the headings: lower case, spaces to dashes, punctuation dropped."""
    anchors = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_spool_readme_links_to_a_section_that_exists() -> None:
    """`spool/README.md` sends the reader to a section of the top-level README that is there."""
    text = (ROOT / "spool" / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\(\.\./README\.md#([^)]+)\)", text)
    assert links, "spool/README.md should link to the README's spool section"
    anchors = _anchors((ROOT / "README.md").read_text(encoding="utf-8"))
    for anchor in links:
        assert anchor in anchors, anchor


def test_systemd_unit_points_at_no_missing_file() -> None:
    """The unit names no `file://` documentation: after `pip install` there is none to find."""
    unit = (ROOT / "systemd" / "ekase-gateway.service").read_text(encoding="utf-8")
    documentation = [line for line in unit.splitlines() if line.startswith("Documentation=")]
    assert not any("file:" in line for line in documentation)
