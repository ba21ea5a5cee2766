"""BNN ensembles (issue 7): deep-ensemble pre-training, per-member sampling, predictive metrics."""
