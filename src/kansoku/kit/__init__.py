"""What every kansoku service shares: settings, logging, telemetry, health, database,
HTTP client, errors and the app assembly. The kit takes explicit parameters and never
imports a service."""
