"""Operating the service: health, metrics, logs, request ids."""
