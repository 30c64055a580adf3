# Clients of the upstream services (pricing, inventory) over keep-alive HTTP/1.1 pools.
