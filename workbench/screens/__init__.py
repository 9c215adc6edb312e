"""Modal screens: help, sampling and device choice."""
