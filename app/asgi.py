"""The ASGI app uvicorn serves: `refundwatch serve` points here."""

from __future__ import annotations

import gc
import os

from app.config import get_settings
from app.main import create_app
from app.ops.logs import configure_logging

# Here, not only in `refundwatch serve`: each uvicorn worker process imports this
# module, however the server was started (uvicorn, gunicorn, the CLI).
configure_logging(get_settings())
app = create_app(run_worker=os.environ.get("REFUNDWATCH_RUN_WORKER", "1") == "1")

# The modules, models and compiled statements loaded so far live as long as the
# process: keep them out of every future collection, so a full collection walks
# only what requests allocate (shorter pauses, a lower p99). Collections are also
# made less frequent: a request allocates thousands of containers, most freed at once.
gc.collect()
gc.freeze()
gc.set_threshold(10_000, 20, 20)
