"""What comes in and its rules: reading pain.001, validating, deciding, executing."""
