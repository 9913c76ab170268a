"""The systemd unit as shipped in `systemd/` (the installed copy is checked as root by
`tests/integration/system/test_install_script.py`)."""

from __future__ import annotations

import re
from pathlib import Path

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "ekase-gateway.service"


def _settings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if re.match(r"^[A-Z]\w*=", line):
            name, value = line.split("=", 1)
            found.setdefault(name, []).append(value)
    return found


def test_a_configuration_error_is_not_restarted_for_ever() -> None:
    """A daemon that exits with an error is restarted, but not one that exits 2: that is a
    configuration error (SPEC §9), which a restart every RestartSec would only repeat in the
    journal; the unit stays failed, its one line naming the key, until someone fixes it."""
    settings = _settings()
    assert settings["Restart"] == ["on-failure"]
    assert "2" in " ".join(settings.get("RestartPreventExitStatus", [])).split()


def test_the_system_call_filter_lets_delivery_give_answers_the_clients_group() -> None:
    """In OpenSSH mode a client's out/ is setgid to its group, and delivery gives each
    answer that group (`os.chown`, in systemd's @chown set) before renaming it in. The
    unit denies @privileged, which holds @chown: without @chown allowed again after it,
    the kernel killed the daemon (SIGSYS) at its first delivery, and systemd restarted it
    for ever. systemd applies the lines in order: an allow list after a deny list adds."""
    filters = _settings()["SystemCallFilter"]
    assert filters[0] == "@system-service"
    assert filters.index("~@privileged") < filters.index("@chown")


def test_the_metrics_process_series_can_read_what_they_need() -> None:
    """The README promises the standard process_* series (memory, CPU): prometheus_client
    reads /proc/stat for them, which ProcSubset=pid hides."""
    assert "ProcSubset" not in _settings()
