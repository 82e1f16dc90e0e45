"""The performance lab's page (`routes.py`)."""
