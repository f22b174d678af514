"""Placeholder: filled in by the gating work."""
__all__ = []
