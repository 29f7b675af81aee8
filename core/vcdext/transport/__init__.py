"""Transports that carry vCD's extension messages to the dispatcher."""
