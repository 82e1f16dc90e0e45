"""The admin's back office (`routes.py`): the dashboard, products, inventory, the
mailbox, dead letters and the fault flags."""
