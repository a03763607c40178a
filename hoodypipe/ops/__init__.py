"""
Running hoodypipe as a service: readiness and shutdown signals for systemd,
the graceful drain, health, Prometheus metrics, the per-transfer log, and
the heap given back after a load peak.

Nothing here sits on the byte path: metrics and logs are transfer observers
told once per transfer, and gauges are read from the registry at scrape time.
"""
