"""The library's built-in forms, similarities and strategies, registered
through the same hooks as third-party plugins."""
