"""Cases: the 数字城管 case loop, field reports, photos, deadlines and duplicates."""
