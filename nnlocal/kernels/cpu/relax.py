"""Placeholder: filled in by the relax work."""
__all__ = []
