"""Maps: the supervisor's dashboard (folium, imported lazily), its local front-end assets and styles, and
the vector tiles it draws."""
