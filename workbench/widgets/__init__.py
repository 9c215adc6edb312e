"""Reusable widgets of the workbench, one per module."""
