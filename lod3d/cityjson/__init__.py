"""CityJSON 2.0: building models, writer (CityJSON and CityJSONSeq), reader, rasterizer,
validator."""

from .model import SEMANTIC_TYPES, Building, BuildingPart, Solid, Surface
from .rasterize import BurntCity, burn_buildings, burn_cityjson
from .reader import CityModel, read_cityjson
from .validate import ValidationError, validate_document, validate_file
from .writer import ogc_crs_url, to_cityjson_dict, write_cityjson, write_cityjsonseq

__all__ = ["SEMANTIC_TYPES", "Building", "BuildingPart", "Solid", "Surface", "CityModel", "read_cityjson",
           "BurntCity", "burn_buildings", "burn_cityjson",
           "ValidationError", "validate_document", "validate_file", "ogc_crs_url", "to_cityjson_dict",
           "write_cityjson", "write_cityjsonseq"]
