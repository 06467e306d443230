"""03 hyper-tuning: the learning-rate range test and the optuna search, both composed of training parts."""
