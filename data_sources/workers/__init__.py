"""Queries of grid workers (网格员) for a `Scope`: who is on duty and how they moved today."""
