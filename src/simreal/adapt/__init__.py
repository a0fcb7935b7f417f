"""Domain adaptation methods."""
