"""Training tools: the book's networks, the training loop, paper recipes and FLOP counts."""
