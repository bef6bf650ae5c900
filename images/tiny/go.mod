module mcpd.local/tiny

go 1.22
