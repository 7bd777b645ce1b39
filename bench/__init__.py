"""Benchmarks (`make bench`): load over real SIP against the engine and against Asterisk
alone, the API, ARI event routing, and media conversion. See bench/README.md."""
