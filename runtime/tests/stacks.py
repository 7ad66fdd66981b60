"""The answers the model's tests plan with, as tuning/machine.py's load_stack() gives them."""

STACK = {
    "framework": "flask",
    "interface": "wsgi",
    "server": "gunicorn",
    "workload": "mixed",
    "cpu_limit": "1",
    "memory_limit": "512MiB",
    # deploy/stack.toml's [memory]: figures of the tests' own, as FIGURES
    "worker_memory_mib": "50",
    "server_memory_mib": "40",
}
