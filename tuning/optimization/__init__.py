"""The search's optimisation: the space, the stored Optuna study and its Tune searcher, the trial and what it reports."""
