"""Adapters: the ports implemented on real infrastructure."""
