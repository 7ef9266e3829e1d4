"""Notifiers: log, signed webhook, SNS."""
