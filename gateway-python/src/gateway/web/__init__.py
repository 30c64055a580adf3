# The storefront served by the gateway: server-rendered pages (pages.py), their templates,
# static assets and error messages (site.py) and the catalog's product names (catalog.py).
