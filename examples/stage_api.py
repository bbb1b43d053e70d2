"""Compose lod3d's stages from Python on a small simulated acquisition.

    .venv/bin/python examples/stage_api.py [OUT_DIR]

Each stage takes the products so far and adds its own (PDAL-style); a Pipeline checks
that every stage finds what it reads. The same stages run per tile in `lod3d city`.
"""

import sys
from pathlib import Path

from lod3d.aoi import aoi
from lod3d.geometry.rpc import RPCModel
from lod3d.lod.stage import LOD
from lod3d.outline import Outline
from lod3d.pipeline import Pipeline
from lod3d.segment.stage import Segment
from lod3d.simulate.acquisition import simulate
from lod3d.stereo.dsm import DSM
from lod3d.terrain.stage import Terrain
from lod3d.cityjson import write_cityjson

out = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/example")
area = aoi("toulouse").crop(150)
acquisition = simulate(area, out / "simulation", seed=3, overwrite=True)

pipeline = Pipeline([
    DSM(gsd=0.5, bounds=area.bounds, crs=area.crs),   # images  -> dsm, confidence, ortho
    Terrain(),                                        # dsm     -> dtm, ndsm
    Segment(),                                        # ortho, ndsm -> building_probability, mask
    Outline(),                                        # mask    -> footprints
    LOD(lods=(0, 1, 2)),                              # dsm, dtm, footprints -> buildings
])
products = pipeline.run({"images": [(p, RPCModel.from_file(p)) for p in acquisition.images]})

products["dsm"].write(out / "dsm.tif")
write_cityjson(out / "city.city.json", products["buildings"], crs_epsg=area.epsg,
               metadata={"referenceDate": "2025-04-17"})
print(pipeline)
print({name: f"{seconds:.1f} s" for name, seconds in products.timings.items()})
print(f"{len(products['buildings'])} buildings -> {out / 'city.city.json'}")
