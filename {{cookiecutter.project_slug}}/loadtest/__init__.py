"""The load test: locustfile.py (`make loadtest`), and tune.py, the workers x threads sweep (`make tune`)."""
