"""Everything about running this service, as a package: each tool runs from the project root as
`python -m deploy.<name>` (serve, healthcheck, local, tuning, collect_static, container_test,
template_updates), the way the Dockerfile, compose, Kubernetes and the Makefile run them.
"""
