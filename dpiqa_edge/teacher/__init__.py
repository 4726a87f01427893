"""teacher stage."""
