"""Queries of camera alarms (告警) for a `Scope`: the history a leader follows up, and its export."""
