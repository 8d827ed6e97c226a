"""Training: data, the custom GradientTape loop, snapshots, metrics, resume, the CLI."""
