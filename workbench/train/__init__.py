"""Training: the trainer loop, its events and controls, schedules, checkpoints, DDP."""
