"""ekase-gateway: a treasury's batch payment gateway (pain.001 in, pain.002/camt out)."""

import warnings

__version__ = "0.1.0"

# asyncssh names cryptography's DSA classes, which cryptography 51 warns of at every import
# of it (a CryptographyDeprecationWarning per name, each to stderr). The gateway offers no
# DSA (`gateway.ssh_algorithms`): to an operator the lines say nothing, and they made every
# one-line refusal of `run` two dozen lines. Set here, so every process of ours has it.
warnings.filterwarnings("ignore", message="DSA is deprecated", module=r"asyncssh\.")
