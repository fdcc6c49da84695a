"""Panels embedded in other sites' portals: grants, signed tokens, the panels they may show."""
