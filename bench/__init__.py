"""`make bench` (SPEC §10): every workload, measured in one run (`bench.run`).

The gateway package is imported first so that its warning filters (`gateway/__init__.py`)
hold in every bench process before anything imports asyncssh.
"""

import gateway  # noqa: F401
