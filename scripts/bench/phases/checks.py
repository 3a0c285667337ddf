"""Bookkeeping phases: how fast the CPU is at a moment of the run, and what the database holds."""

from __future__ import annotations

from bench.context import Bench
from bench.cpu import cpu_calibration_us
from bench.database import pg_fetchval
from bench.phases import Phase
from bench.progress import log

COUNTED_TABLES = ("daily_figures", "orders", "refunds", "alerts")


class Calibrate(Phase):
    """µs per ``sum(range(1000))`` now: ``result["calibration_us"][when]``."""

    def __init__(self, when: str, group: str = "core") -> None:
        self.when, self.group = when, group

    async def run(self, bench: Bench) -> None:
        calibration = bench.result.setdefault("calibration_us", {})
        calibration[self.when] = cpu_calibration_us()
        if self.when == "end":
            log(f"CPU calibration, µs per sum(range(1000)): {calibration}")


class Checks(Phase):
    """Every accepted event stored exactly once, and the size of what was built: ``checks``."""

    async def run(self, bench: Bench) -> None:
        url = bench.app.db_url
        in_db = await pg_fetchval(url, "SELECT count(*) FROM events")
        checks = {"accepted_total": bench.stored, "events_in_db": in_db}
        checks["consistent"] = in_db == bench.stored
        for table in COUNTED_TABLES:
            checks[f"{table}_rows"] = await pg_fetchval(url, f"SELECT count(*) FROM {table}")
        checks["app_db_size"] = await pg_fetchval(
            url, "SELECT pg_size_pretty(pg_database_size(current_database()))"
        )
        bench.result["checks"] = checks
        log(f"checks: {checks}")
