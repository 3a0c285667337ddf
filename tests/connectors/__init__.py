"""Tests of the marketplace connectors (pure parts and the gateway against a fake)."""
