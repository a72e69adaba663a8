"""Typed contracts for every event ecr-warden consumes or emits."""
