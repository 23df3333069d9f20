"""Ingestion without a Kafka client: vendors that speak MQTT (the bridge) or push HTTP
(`POST /ingest/v1/{feed}`) reach the same raw topics, and the same stages, as Kafka feeds."""
