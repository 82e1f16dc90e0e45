"""alerts: the alert rules (`rules`, the YAML file), their evaluation and the alerts'
states (`evaluator`), notifications (`notify`) and the export for Prometheus and
Alertmanager (`prometheus`); `routes` serves the alerts, their history and the rules in
use (docs/alerts.md)."""
