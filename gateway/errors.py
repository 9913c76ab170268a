"""Faults, as opposed to expected bad input (which is a value: a finding).

GatewayError
├── ConfigError          permanent: the configuration file is wrong (exit 2)
├── UsageError           permanent: the command line is wrong (exit 2)
├── SealError            permanent: signing key or certificate unusable
└── TransientError       worth retrying: database unreachable, disk full
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every fault the gateway raises on purpose."""


class ConfigError(GatewayError):
    """The configuration is wrong; the message names the key path."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


class UsageError(GatewayError):
    """The command line asks for something impossible."""


class SealError(GatewayError):
    """The signing key or certificate cannot be used."""


class TransientError(GatewayError):
    """A fault that may pass: retry later."""
