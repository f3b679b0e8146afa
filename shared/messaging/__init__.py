"""RabbitMQ topology, a confirming publisher and a consumer helper, shared by every service."""
