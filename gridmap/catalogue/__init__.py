"""The national catalogue (CJ/T 214-2007): component and event classes, filing conditions, time limits."""
