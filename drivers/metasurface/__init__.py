"""metasurface."""
