"""Placeholder: filled in by the conv work."""
__all__ = []
