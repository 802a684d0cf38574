"""Protected: the rules."""
RULES = "tromp-taylor"
