"""The referee: reference players, GTP server and client, the engine locator, matches, head-to-head, Elo, the ladder, the opening book and the shipped KataGo net. A node may not change it."""
