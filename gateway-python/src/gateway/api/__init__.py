# HTTP layer of the gateway: dependency aliases and one router module per resource.
