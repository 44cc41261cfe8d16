"""What the tests and the benchmarks share, in one home (as `optuna.testing` is Optuna's): real services started for a
test or a measurement (`services`), a trial that trains nothing (`synthetic_trial`) and the harness that runs many of
them through the search's own path and audits what they left (`scale`). The product never imports this package."""
