"""Road segments and their management grades (DOMAIN.md §2)."""
