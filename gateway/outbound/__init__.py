"""What the gateway writes: one module per ISO 20022 message type and version."""
