// Real-user monitoring for the storefront and admin pages (written here; no build step).
