"""Which peers the app server believes when they say who the client is: FORWARDED_ALLOW_IPS.

That is nginx alone (127.0.0.1 on the host and in the pod, any peer on compose's network, where
only nginx reaches the app). nginx has already decided what to believe from whoever is in front of
it (TRUSTED_PROXIES, deploy/nginx/templates/forwarded.conf.template) and sends one client address.
"""

from __future__ import annotations

import ipaddress


class TrustedPeers:
    """FORWARDED_ALLOW_IPS as the servers read it: "*", or addresses and CIDR ranges separated by commas."""

    def __init__(self, allowed: str) -> None:
        names = [item.strip() for item in allowed.split(",") if item.strip()]
        self.everyone = "*" in names
        self.networks = [ipaddress.ip_network(name, strict=False) for name in names if name != "*"]

    def __contains__(self, peer: str | None) -> bool:
        if self.everyone:
            return True
        try:
            address = ipaddress.ip_address(peer) if peer else None
        except ValueError:  # a unix socket's peer has no address
            return False
        return address is not None and any(address in network for network in self.networks)


def client_address(x_forwarded_for: str) -> str:
    """The client nginx names in X-Forwarded-For: its only entry (the last, were there more)."""
    return x_forwarded_for.rpartition(",")[2].strip()
