"""ECB reference rates: reading the ECB's files (`ecb`), the days the ECB publishes
(`target`), the stored rates (`store`) and the spool's `rates/` drop folder (`drop`).

The conversion itself is pure and lives in `gateway.fx`.
"""
