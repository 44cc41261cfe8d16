"""What a search records and shows: MLflow's parent run and trial runs (through an outbox), TensorBoard, the console."""
