"""Every table, imported in one place for Alembic and the schema tests."""

from app.alerts.models import Alert, AlertState, Silence
from app.auth.models import ApiKey
from app.db.base import Base
from app.figures.models import DailyFigures
from app.ingest.models import Event, OrderRecord, RefundRecord
from app.risk.models import Policy
from app.stores.models import Store
from app.webhooks.models import Delivery, DeliveryAttempt, WebhookSubscription

__all__ = [
    "Alert",
    "AlertState",
    "ApiKey",
    "Base",
    "DailyFigures",
    "Delivery",
    "DeliveryAttempt",
    "Event",
    "OrderRecord",
    "Policy",
    "RefundRecord",
    "Silence",
    "Store",
    "WebhookSubscription",
]
