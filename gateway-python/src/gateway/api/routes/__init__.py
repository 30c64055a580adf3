# Routers of the public API, one module per resource (products, orders, stats, health).
