module polyshop/deploy/healthcheck

go 1.26.0
