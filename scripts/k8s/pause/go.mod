module spiffe-shop.local/pause

go 1.24
