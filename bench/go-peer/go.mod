module shop.example/bench/go-peer

go 1.22
