"""Routing: from a report's location and class to its unit grid, road, component and responsible
department — with the evidence and the ambiguity of the decision (see :mod:`gridmap.routing.decide`)."""
