"""Every table, imported in one place for Alembic and the schema tests.

Each capability keeps its own tables (``app/<capability>/models.py``); this
module only gathers them, so ``app.db`` never imports a capability.
"""

from app.alerts.models import Alert, AlertSequence, AlertState, Silence
from app.auth.models import ApiKey
from app.connectors.models import Connection
from app.console.models import AlertAcknowledgement, ConsoleSession
from app.db.base import Base
from app.events.models import Event, OrderRecord, RefundRecord
from app.figures.models import DailyFigures
from app.imports.models import Import, ImportRowError
from app.policies.models import Policy
from app.stores.models import Store
from app.webhooks.models import Delivery, DeliveryAttempt, WebhookSubscription

__all__ = [
    "Alert",
    "AlertAcknowledgement",
    "AlertSequence",
    "AlertState",
    "ApiKey",
    "Base",
    "Connection",
    "ConsoleSession",
    "DailyFigures",
    "Delivery",
    "DeliveryAttempt",
    "Event",
    "Import",
    "ImportRowError",
    "OrderRecord",
    "Policy",
    "RefundRecord",
    "Silence",
    "Store",
    "WebhookSubscription",
]
