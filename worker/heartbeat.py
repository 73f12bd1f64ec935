"""This worker's heartbeat in Redis (core.fleet), for the workers view."""
