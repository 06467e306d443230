"""04 the run: our training loop and its parts."""
