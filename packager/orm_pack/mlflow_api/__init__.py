"""MLflow over HTTP: the one client, its users and permissions, and the end-to-end checks of doctor."""
