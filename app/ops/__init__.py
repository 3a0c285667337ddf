"""Operating the service: Prometheus metrics, logging, request ids, the demo data set."""
