"""Use cases: plain functions taking inputs and ports, one transaction each."""
