"""Rendering backends."""
