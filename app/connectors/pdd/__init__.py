"""The Pinduoduo open-platform connector: the pure and network parts.

* :mod:`~app.connectors.pdd.signing` -- the request signature and the form.
* :mod:`~app.connectors.pdd.gateway` -- the async gateway client, its typed
  errors, the per-app rate limiter and the retry backoff.
* :mod:`~app.connectors.pdd.windows` -- which time windows to read, in which
  page order, and how far ``synced_through`` may move.
* :mod:`~app.connectors.pdd.mapping` -- platform records to events.

None of these touch the database; the sync job composes them.
"""
