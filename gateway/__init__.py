"""ekase-gateway: a treasury's batch payment gateway (pain.001 in, pain.002/camt out)."""

__version__ = "0.1.0"
