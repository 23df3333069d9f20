"""Grafana: dashboards as code, pushed with the Grafana HTTP API client."""
