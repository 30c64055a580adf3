// The container healthcheck binary (deploy/docker/healthcheck): standard library only.
module polyshop/deploy/healthcheck

go 1.26.0
