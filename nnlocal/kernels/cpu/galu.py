"""Placeholder: filled in by the BU-TD work."""
__all__ = []
