"""Thin Lambda handlers: the same use cases and app, behind API Gateway, Step Functions, streams."""
