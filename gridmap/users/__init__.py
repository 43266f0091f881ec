"""Users, roles and tokens: who may see and do what (DOMAIN.md §6)."""
