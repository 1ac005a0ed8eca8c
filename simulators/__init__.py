"""Replay recorded workloads through routing policies; traces live in `slmlab.traces`."""
