"""slos: service level objectives — declared in the alert rules file (`models.SLO`), their
error budget and burn rates (`budget`), served by `/api/slos`. The burn-rate alert rules
measure SLOs with `budget.burn`, which the app hands the alert evaluator."""
