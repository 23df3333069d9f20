"""The pure domain core: no Kafka, no database imports. Unit-testable on its own."""
