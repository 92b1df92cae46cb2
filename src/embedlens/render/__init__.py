"""Rendering: result objects in, files out (offline HTML, PNG, tables). Nothing here computes results."""
