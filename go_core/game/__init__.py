"""The rules of the game: Tromp-Taylor engine (numba) and its plain-Python twin, coordinates, symmetries, SGF. Referee side: a node may not change it; imports nothing else of go_core."""
