"""The city simulator: realistic raw traffic for every built-in feed, with ground truth."""
