"""The money: accounts, transfers, postings and the business-day calendar.

This package never imports `gateway`; the gateway is one user of the ledger.
"""
