"""ekase-gateway: a treasury's batch payment gateway (pain.001 in, pain.002/camt out)."""

import sys
import warnings

__version__ = "0.1.0"

# asyncssh names cryptography's DSA classes, which cryptography 51 warns of at every import
# of it (a CryptographyDeprecationWarning per name, each to stderr). The gateway offers no
# DSA (`gateway.ssh_algorithms`): to an operator the lines say nothing, and they made every
# one-line refusal of `run` two dozen lines. Set here, so every process of ours has it.
warnings.filterwarnings("ignore", message="DSA is deprecated", module=r"asyncssh\.")

# structlog imports `rich` whenever it is installed, for its console renderer's tracebacks;
# the gateway logs JSON lines (`gateway.logs`) and never uses it. A development venv has it
# (import-linter needs it), an installation of the gateway alone does not: every command
# would start more slowly where it is measured than where it runs. Set before anything of
# ours imports structlog; a process that already has rich keeps it.
sys.modules.setdefault("rich", None)  # type: ignore[arg-type]
