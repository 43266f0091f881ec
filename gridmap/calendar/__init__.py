"""The working calendar: working days, holidays and daily working windows, and time arithmetic on it."""
