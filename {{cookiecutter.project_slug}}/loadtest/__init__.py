"""The load test: locustfile.py (`make loadtest`, `make tune`), with its tools locked on their own (pyproject.toml)."""
