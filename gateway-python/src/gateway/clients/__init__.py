# Clients of the upstream services (pricing, inventory) over pooled aiohttp sessions.
