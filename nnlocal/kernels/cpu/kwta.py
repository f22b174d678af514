"""Placeholder: filled in by the kwta work."""
__all__ = []
