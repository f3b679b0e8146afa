"""The chaos run: the four services under a sustained load on a RabbitMQ node and
a store of the run's own, while the broker restarts, each service is SIGKILLed,
the store stops, and poison messages and duplicate deliveries arrive; then the
checks that nothing accepted was lost or doubled."""
