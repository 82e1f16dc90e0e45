"""rum: real-user monitoring — the browsers' Web Vitals per page, rated, and their
JavaScript errors, which arrive as log records from `storefront-web`."""
