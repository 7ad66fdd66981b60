"""hypercorn settings: the plan (pyserve_runtime.tuning) and pyserve_runtime.settings, at start-up."""

import logging

from pyserve_runtime import logs, settings, tuning

_plan = tuning.start_up_plan()
_settings = settings.from_environment()

workers = _plan.workers
worker_class = "uvloop"
keep_alive_timeout = settings.APP_KEEPALIVE_S
graceful_timeout = settings.GRACEFUL_STOP_S
# hypercorn's default accept backlog is 100, small for a burst behind nginx.
backlog = 2048
# WebSockets (ASGI apps): pinged (hypercorn sends no pings unless told) and their messages capped
# (pyserve_runtime.settings). hypercorn accepts per-message compression whenever a client offers it, and
# nginx does not pass the offer on (https://github.com/org/pyserve-template/blob/main/docs/decisions.md#no-per-message-compression-on-websockets).
websocket_ping_interval = settings.WS_PING_INTERVAL_S
websocket_max_message_size = settings.WS_MAX_MESSAGE_BYTES
# No max_requests: a recycled hypercorn worker dropped a request now and then under load
# (https://github.com/org/pyserve-template/blob/main/docs/decisions.md#recycling-workers).
# Logs in LOG_FORMAT, as the app's own lines (pyserve_runtime.logs): hypercorn's error logger passed as a
# logger, not "-", which would give it a handler and format of its own. The access line is
# pyserve_runtime.served_app's (ACCESS_LOG=1), the same for every server.
accesslog = None
errorlog = logging.getLogger("hypercorn.error")
loglevel = _settings.log_level.upper()
logconfig_dict = logs.dict_config(_settings, ("hypercorn.error", "hypercorn.access"))
