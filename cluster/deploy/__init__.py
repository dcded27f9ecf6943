"""Deployment tooling: the inventory topology, HAProxy configs and RabbitMQ topology."""
