"""Imported by Python at start-up in every process the bench starts (bench/workday.py)."""

import os

if os.environ.get("EKASE_BENCH_CLOCK"):
    import ekase_bench_clock

    ekase_bench_clock.install(os.environ["EKASE_BENCH_CLOCK"])
