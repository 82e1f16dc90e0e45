"""lab: the performance-problem lab."""

SERVICE = "lab"
