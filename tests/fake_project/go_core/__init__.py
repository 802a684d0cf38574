"""The fake project's package (a regular package, so it wins over any other go_core on the path)."""
