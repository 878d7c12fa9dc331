module spiffe-shop.local/netcheck

go 1.24
