"""Importers and exporters: GeoJSON, GeoPackage, Shapefile, FlatGeobuf, GeoParquet and CSV."""
