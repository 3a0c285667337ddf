"""The ASGI app uvicorn serves: `refundwatch serve` points here."""

from __future__ import annotations

import os

from app.main import create_app

app = create_app(run_worker=os.environ.get("REFUNDWATCH_RUN_WORKER", "1") == "1")
