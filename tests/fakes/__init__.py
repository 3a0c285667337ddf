"""Faithful fakes of the outside services refundwatch talks to, on loopback."""
