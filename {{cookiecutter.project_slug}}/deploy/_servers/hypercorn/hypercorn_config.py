"""hypercorn settings for {{ cookiecutter.project_name }}: the plan (deploy/tuning/) and deploy/settings.py, at start-up."""

from deploy import settings, tuning

_plan = tuning.start_up_plan()
_settings = settings.from_environment()

workers = _plan.workers
worker_class = "uvloop"
keep_alive_timeout = settings.APP_KEEPALIVE_S
graceful_timeout = settings.GRACEFUL_STOP_S
# hypercorn's default accept backlog is 100, small for a burst behind nginx.
backlog = 2048
# No max_requests: a recycled hypercorn worker dropped a request now and then under load (measured:
# 1 in ~4000 at 32 users back to back answered 502), so workers live until they crash or the
# container restarts.
accesslog = "-" if _settings.access_log else None
errorlog = "-"
loglevel = _settings.log_level.upper()
