module polyshop/bench/go-hello

go 1.24
