"""Marketplace connectors: pull a seller's orders and after-sales from a platform's
open API and turn them into the events of ``POST /v1/events``."""
