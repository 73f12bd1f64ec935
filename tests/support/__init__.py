"""Shared test parts: loopback servers, small estates, a store filled by hand."""
