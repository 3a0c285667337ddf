"""Every table, imported in one place for Alembic and the schema tests."""

from app.alerts.models import Alert, AlertState, Silence
from app.auth.models import ApiKey
from app.db.base import Base
from app.figures.models import DailyFigures
from app.ingest.models import Event, OrderRecord, RefundRecord
from app.risk.models import Policy
from app.stores.models import Store

__all__ = [
    "Alert",
    "AlertState",
    "ApiKey",
    "Base",
    "DailyFigures",
    "Event",
    "OrderRecord",
    "Policy",
    "RefundRecord",
    "Silence",
    "Store",
]
