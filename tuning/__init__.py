"""The search: Ray Tune trials of the fmnist CNN, proposed by Optuna, stopped by ASHA, tracked in MLflow
and TensorBoard, with the winner registered in MLflow's model registry. Entry points:
`python -m tuning.search` and `python -m tuning.report`."""
