"""Learning from results (issue 16): point-in-time features, labels from the strategy's own simulated exits, the
calibrated win-probability model, its walk-forward evaluation (docs/ARCHITECTURE.md §Machine learning)."""
