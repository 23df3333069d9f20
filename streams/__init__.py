"""The plumbing: the Faust app, the topic catalogue, feed adapters and the sinks."""
