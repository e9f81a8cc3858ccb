"""The Hydra configs, installed as the package `neurogrow.conf` (see pyproject.toml) for `pkg://neurogrow.conf`."""
