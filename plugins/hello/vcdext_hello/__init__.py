"""vcdext-hello: the example plugin a new service author copies."""
